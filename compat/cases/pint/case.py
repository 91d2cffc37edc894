"""math: physical quantities with units: conversions, dimensional checks and formatting (unit definitions are data files)."""


def compute(task):
    import pint  # loaded where quantities are parsed; its registry reads default_en.txt

    ureg = pint.UnitRegistry()
    speed = ureg.Quantity(task["speed"][0], task["speed"][1])
    energy = (0.5 * ureg.Quantity(*task["mass"]) * speed**2).to("kJ")
    try:
        ureg.Quantity(1, "meter") + ureg.Quantity(1, "second")
        error = "added"
    except pint.DimensionalityError as exc:
        error = f"DimensionalityError: {exc}"
    return {
        "speed_kmh": round(speed.to("km/h").magnitude, 9),
        "speed_mph": round(speed.to("mph").magnitude, 9),
        "energy_kJ": round(energy.magnitude, 9),
        "energy_text": f"{energy:.3f~P}",
        "parsed": [str(ureg(text).to_base_units()) for text in task["expressions"]],
        "dimensionality": str(ureg("N*m/s").dimensionality),
        "compatible": sorted(str(u) for u in ureg.get_compatible_units("[pressure]") if str(u) in ("pascal", "bar", "atmosphere", "psi", "torr")),
        "temperature": round(ureg.Quantity(task["celsius"], ureg.degC).to("degF").magnitude, 9),
        "error": error,
    }
