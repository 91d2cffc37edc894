"""parsing: PEP 440 versions, specifiers, PEP 508 requirements and markers, and wheel filename tags."""

from packaging.version import Version


def compute(task):
    # Requirements pull in the marker and specifier machinery: imported where requirements are read.
    from packaging.requirements import Requirement
    from packaging.utils import parse_wheel_filename

    versions = sorted(task["versions"], key=Version)
    out = {"sorted": versions, "requirements": {}}
    for text in task["requirements"]:
        req = Requirement(text)
        out["requirements"][text] = {
            "name": req.name,
            "extras": sorted(req.extras),
            "specifier": str(req.specifier),
            "allowed": [v for v in versions if req.specifier.contains(v, prereleases=False)],
            "best": max((v for v in versions if v in req.specifier), key=Version, default=None),
            "marker_on_wasi": req.marker.evaluate(task["environment"]) if req.marker else None,
        }
    name, version, build, tags = parse_wheel_filename(task["wheel"])
    out["wheel"] = {"name": name, "version": str(version), "tags": sorted(str(tag) for tag in tags)}
    out["details"] = {v: [Version(v).is_prerelease, Version(v).is_postrelease, str(Version(v).base_version)] for v in task["versions"]}
    return out
