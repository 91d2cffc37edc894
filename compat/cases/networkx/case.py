"""graphs: weighted shortest path, betweenness, minimum spanning tree and node connectivity of a road graph."""

import networkx as nx


def compute(task):
    # Approximation algorithms are not imported by `import networkx`: real code imports them where used.
    from networkx.algorithms import approximation

    graph = nx.Graph()
    for a, b, km in task["roads"]:
        graph.add_edge(a, b, weight=km)
    path = nx.dijkstra_path(graph, task["from"], task["to"])
    length = nx.dijkstra_path_length(graph, task["from"], task["to"])
    betweenness = nx.betweenness_centrality(graph, weight="weight")
    tree = nx.minimum_spanning_tree(graph)
    return {
        "path": path,
        "km": length,
        "most_central": sorted(betweenness, key=lambda node: (-round(betweenness[node], 9), node))[:3],
        "betweenness": {node: round(value, 9) for node, value in sorted(betweenness.items())},
        "spanning_tree_km": tree.size(weight="weight"),
        "spanning_tree_edges": sorted(sorted(edge) for edge in tree.edges()),
        "node_connectivity": approximation.node_connectivity(graph),
        "bridges": sorted(sorted(edge) for edge in nx.bridges(graph)),
    }
