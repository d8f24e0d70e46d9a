"""Removes the TrueType hinting from the shipped fonts: smaller PDFs, same glyphs.

The fonts come from Debian (fonts-dejavu-core, fonts-noto-core). Hinting instructions only
help screens at small pixel sizes; printers and PDF viewers don't need them, and they were a
third of every subset font in a PDF. Glyph ids, outlines, metrics and the shaping tables
(GSUB, GPOS) are untouched, so `hb-shape` on these files gives what the engine draws.

    pip install fonttools
    python3 assets/fonts/unhint.py /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ...

writes each file into this folder under its own name.
"""

import os
import sys

from fontTools.ttLib import TTFont
from fontTools.ttLib.tables import ttProgram

HINTING_TABLES = ["fpgm", "prep", "cvt ", "hdmx", "LTSH", "VDMX"]

for path in sys.argv[1:]:
    font = TTFont(path)
    for tag in HINTING_TABLES:
        if tag in font:
            del font[tag]
    glyf = font["glyf"]
    for name in font.getGlyphOrder():
        glyph = glyf[name]
        if hasattr(glyph, "program"):
            empty = ttProgram.Program()
            empty.fromBytecode(b"")
            glyph.program = empty
    maxp = font["maxp"]
    for attr in ["maxTwilightPoints", "maxStorage", "maxFunctionDefs",
                 "maxInstructionDefs", "maxStackElements", "maxSizeOfInstructions"]:
        if hasattr(maxp, attr):
            setattr(maxp, attr, 0)
    if hasattr(maxp, "maxZones"):
        maxp.maxZones = 1
    out = os.path.join(os.path.dirname(__file__), os.path.basename(path))
    font.save(out)
    print(out, os.path.getsize(path), "->", os.path.getsize(out))
