"""data formats: load a YAML document with anchors and merge keys safely, refuse an unsafe tag, dump it back sorted."""


def compute(task):
    import yaml  # the YAML parser is loaded only when a document arrives

    data = yaml.safe_load(task["document"])
    try:
        yaml.safe_load(task["unsafe"])
        unsafe = "loaded"
    except yaml.constructor.ConstructorError as error:
        unsafe = error.problem
    events = [type(event).__name__ for event in yaml.parse(task["document"])]
    return {
        "data": data,
        "round_trip": yaml.safe_load(yaml.safe_dump(data)) == data,
        "dumped": yaml.safe_dump(data, default_flow_style=False, sort_keys=True, allow_unicode=True),
        "unsafe": unsafe,
        "event_count": len(events),
        "first_events": events[:6],
    }
