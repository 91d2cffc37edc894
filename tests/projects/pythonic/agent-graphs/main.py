"""networkx, a popular pure-Python package that imports bz2 at module level."""

import networkx


class Graphs:
    def __init__(self, task):
        self.task = task

    def run(self):
        if self.task.get("op") == "tempfile":  # this agent has no scratch folder
            import tempfile

            try:
                tempfile.mkstemp()
            except FileNotFoundError as error:
                return str(error)
        graph = networkx.Graph()
        graph.add_weighted_edges_from(self.task["edges"])
        from networkx.algorithms.shortest_paths import weighted  # a submodule, imported lazily

        length, path = weighted.single_source_dijkstra(graph, self.task["source"], self.task["target"])
        return {"length": length, "path": path}


def main(config):
    return Graphs(config["task"])
