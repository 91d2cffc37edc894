"""text: ASCII-art banners in several FIGlet fonts (font files are package data)."""


def compute(task):
    import pyfiglet  # loaded where a banner is printed

    banners = {font: pyfiglet.figlet_format(task["text"], font=font, width=task["width"]) for font in task["fonts"]}
    fonts = pyfiglet.FigletFont.getFonts()
    return {
        "banners": banners,
        "centered": pyfiglet.Figlet(font="small", justify="center", width=40).renderText("ok"),
        "has_fonts": sorted(font for font in task["fonts"] if font in fonts),
        "font_count_at_least_100": len(fonts) >= 100,
    }
