#!/usr/bin/env python3
"""Checks an SVG drawn by `mproc timeline`: it parses as XML (so it is well-formed), its root is
an <svg> element, and it holds the expected numbers of lanes, chunk bars and call bars.

    check_svg.py timeline.svg --lanes 3 --bars 10 --calls 2
"""
import argparse
import sys
import xml.dom.minidom


def count(doc, tag, cls):
    return sum(1 for e in doc.getElementsByTagName(tag) if e.getAttribute("class").split()[:1] == [cls])


def main():
    p = argparse.ArgumentParser()
    p.add_argument("svg")
    p.add_argument("--lanes", type=int, required=True)
    p.add_argument("--bars", type=int, required=True)
    p.add_argument("--calls", type=int, default=0)
    args = p.parse_args()
    try:
        doc = xml.dom.minidom.parse(args.svg)
    except Exception as e:  # an ExpatError, or the file is missing
        sys.exit("check_svg: %s is not well-formed XML: %s" % (args.svg, e))
    root = doc.documentElement
    found = {"lanes": count(doc, "g", "lane"), "bars": count(doc, "rect", "bar"), "calls": count(doc, "rect", "call")}
    wanted = {"lanes": args.lanes, "bars": args.bars, "calls": args.calls}
    problems = ["%s: %d, expected %d" % (k, found[k], wanted[k]) for k in wanted if found[k] != wanted[k]]
    if root.tagName != "svg" or root.getAttribute("xmlns") != "http://www.w3.org/2000/svg":
        problems.append("the root is <%s>, not an SVG <svg>" % root.tagName)
    if problems:
        sys.exit("check_svg: %s: %s" % (args.svg, "; ".join(problems)))
    print("check_svg: %s: well-formed, %d lanes, %d bars, %d call bars" % (args.svg, found["lanes"], found["bars"],
                                                                          found["calls"]))


if __name__ == "__main__":
    main()
