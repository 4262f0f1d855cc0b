#!/usr/bin/python3
"""check_cli_xml.py - an independent check of a SlicerExecutionModel description (the XML a 3D
Slicer CLI module prints with --xml), written from the format's documentation and schema
(ModuleDescription.xsd) and from what Slicer's ModuleDescriptionParser refuses. Slicer's own
parser (../shared/slicer/bin/slicer-cli-check) is the authority when it is there; this check
stands in for it in a clone without ../shared and runs beside it otherwise.

  check_cli_xml.py FILE.xml    exit 0 and a one-line summary when the description is well
                               formed; exit 1 naming the first problem otherwise
"""
import re
import sys
import xml.etree.ElementTree as ET

FIRST_LINE = '<?xml version="1.0" encoding="utf-8"?>'
TOP = ["category", "title", "description", "version", "documentation-url", "license", "contributor",
       "acknowledgements", "index", "parameters"]
SCALARS = {"integer", "float", "double", "boolean", "string", "integer-vector", "float-vector", "double-vector",
           "string-vector", "boolean-vector"}
ENUMS = {"string-enumeration", "integer-enumeration", "float-enumeration", "double-enumeration"}
POINTS = {"point", "point-vector", "pointfile", "region", "region-vector"}
FILES = {"file", "directory", "image", "geometry", "table", "transform", "measurement"}
PARAM_TAGS = SCALARS | ENUMS | POINTS | FILES
CHILDREN = {"name", "flag", "longflag", "description", "label", "default", "channel", "index", "constraints",
            "element"}
IMAGE_TYPES = {"scalar", "label", "tensor", "diffusion-weighted", "vector", "model"}
NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class Bad(Exception):
    pass


def text(el, tag):
    c = el.find(tag)
    return None if c is None else (c.text or "").strip()


def number(s, what, integer=False):
    try:
        return int(s) if integer else float(s)
    except (TypeError, ValueError):
        raise Bad(f"{what}: '{s}' is not {'an integer' if integer else 'a number'}")


def check_param(p, names, flags, indices):
    tag = p.tag
    where = f"<{tag}>"
    for c in p:
        if c.tag not in CHILDREN:
            raise Bad(f"{where}: unrecognized element <{c.tag}>")
    name = text(p, "name")
    if not name or not NAME_RE.match(name):
        raise Bad(f"{where}: <name> '{name}' must be letters, digits and underscores, not starting with a digit")
    where = f"<{tag}> {name}"
    if name in names:
        raise Bad(f"{where}: the name is used twice")
    names.add(name)
    flag, longflag, index, channel = text(p, "flag"), text(p, "longflag"), text(p, "index"), text(p, "channel")
    if flag is not None:
        f = flag[1:] if flag.startswith("-") else flag
        if len(f) != 1 or not f.isalpha():
            raise Bad(f"{where}: <flag> '{flag}' must be one letter")
        if f in flags:
            raise Bad(f"{where}: flag -{f} used twice")
        flags.add(f)
    if longflag is not None:
        lf = longflag[2:] if longflag.startswith("--") else longflag
        if not NAME_RE.match(lf):
            raise Bad(f"{where}: <longflag> '{longflag}' must be letters, digits and underscores after --")
        if lf in flags:
            raise Bad(f"{where}: flag --{lf} used twice")
        flags.add(lf)
    if index is not None:
        i = number(index, f"{where} <index>", integer=True)
        if i < 0 or i in indices:
            raise Bad(f"{where}: <index> {i} negative or used twice")
        indices.add(i)
    if channel is not None and channel not in ("input", "output"):
        raise Bad(f"{where}: <channel> must be input or output, not '{channel}'")
    simple_return = channel == "output" and tag not in FILES
    if flag is None and longflag is None and index is None and not simple_return:
        raise Bad(f"{where}: needs a <flag>, <longflag> or <index>")
    if tag in FILES and channel is None:
        raise Bad(f"{where}: a file, directory, image, table... parameter needs a <channel>")
    if tag == "image" and p.get("type", "scalar") not in IMAGE_TYPES:
        raise Bad(f"{where}: image type '{p.get('type')}' is not one of {sorted(IMAGE_TYPES)}")
    if tag == "table" and p.get("type") not in (None, "color"):
        raise Bad(f"{where}: table type must be absent or 'color'")
    ref = p.get("reference")
    if ref is not None and ref not in names:
        raise Bad(f"{where}: reference '{ref}' names no parameter before it")
    default = text(p, "default")
    if default is not None and default != "":
        if tag in ("integer", "integer-enumeration"):
            number(default, f"{where} <default>", integer=True)
        elif tag in ("float", "double", "float-enumeration", "double-enumeration"):
            number(default, f"{where} <default>")
        elif tag == "boolean" and default not in ("true", "false"):
            raise Bad(f"{where}: boolean <default> must be true or false, not '{default}'")
    if tag in ENUMS:
        elements = [(e.text or "").strip() for e in p.findall("element")]
        if not elements:
            raise Bad(f"{where}: an enumeration needs <element>s")
        if default not in elements:
            raise Bad(f"{where}: <default> '{default}' is not one of the elements {elements}")
    elif p.find("element") is not None:
        raise Bad(f"{where}: <element> outside an enumeration")
    cons = p.find("constraints")
    if cons is not None:
        if tag not in ("integer", "float", "double"):
            raise Bad(f"{where}: <constraints> on a non-numeric parameter")
        lo, hi = text(cons, "minimum"), text(cons, "maximum")
        lo = number(lo, f"{where} minimum") if lo is not None else None
        hi = number(hi, f"{where} maximum") if hi is not None else None
        if text(cons, "step") is not None:
            number(text(cons, "step"), f"{where} step")
        if lo is not None and hi is not None and lo > hi:
            raise Bad(f"{where}: minimum {lo} > maximum {hi}")
        if default not in (None, ""):
            d = number(default, f"{where} <default>")
            if (lo is not None and d < lo) or (hi is not None and d > hi):
                raise Bad(f"{where}: <default> {d} outside [{lo}, {hi}]")


def check(path):
    raw = open(path, "rb").read().decode("utf-8")
    if raw.splitlines()[0] != FIRST_LINE:
        raise Bad(f"the first line must be exactly {FIRST_LINE}")
    root = ET.fromstring(raw)
    if root.tag != "executable":
        raise Bad(f"the root element is <{root.tag}>, not <executable>")
    for c in root:
        if c.tag not in TOP:
            raise Bad(f"unrecognized element <{c.tag}> in <executable>")
    for required in ("title", "description"):
        if not text(root, required):
            raise Bad(f"<executable> needs a non-empty <{required}>")
    groups = root.findall("parameters")
    if not groups:
        raise Bad("no <parameters> group")
    names, flags, indices, n = set(), set(), set(), 0
    for g in groups:
        if not text(g, "label"):
            raise Bad("a <parameters> group needs a <label>")
        for p in g:
            if p.tag in ("label", "description"):
                continue
            if p.tag not in PARAM_TAGS:
                raise Bad(f"unrecognized element <{p.tag}> in <parameters>")
            check_param(p, names, flags, indices)
            n += 1
    if indices and sorted(indices) != list(range(len(indices))):
        raise Bad(f"indices {sorted(indices)} are not 0, 1, 2, ...")
    return f"{text(root, 'title')}: {len(groups)} groups, {n} parameters, {len(indices)} indexed"


if __name__ == "__main__":
    try:
        print("ok: " + check(sys.argv[1]))
    except (Bad, ET.ParseError, UnicodeDecodeError, IndexError) as e:
        print(f"{sys.argv[1]}: {e}")
        sys.exit(1)
