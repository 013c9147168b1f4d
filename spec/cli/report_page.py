"""Read a `braze-segments report` page with Python's html.parser and print
what spec/cli/report_spec.lua checks, as JSON: the table's rows (cell
texts, attributes, sparkline point counts), the risers and fallers, the
header's facts, every element name seen, and every attribute or style
that could make the browser fetch something.

    python3 spec/cli/report_page.py PAGE.html
"""
import json
import re
import sys
from html.parser import HTMLParser

# Attributes that load or navigate somewhere when they hold a URL.
URL_ATTRS = {"href", "src", "srcset", "action", "formaction", "data", "poster",
             "background", "xlink:href", "ping", "manifest", "cite", "longdesc"}


class Page(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.elements = {}
        self.urls = []
        self.handlers = []
        self.rows = []
        self.head = []
        self.movers = {"risers": [], "fallers": []}
        self.facts = {}
        self.scripts = []
        self.styles = []
        self.stack = []
        self.section = None  # "table", "risers", "fallers"
        self.h2 = None
        self.cell = None
        self.li = None
        self.in_bdi = self.in_p = self.in_dt = self.in_dd = False
        self.dt = None
        self.in_script = self.in_style = self.in_th = False
        self.svg_title = None
        self.svg_titles = []

    def handle_starttag(self, tag, attrs):
        self.elements[tag] = self.elements.get(tag, 0) + 1
        a = dict(attrs)
        for name, value in attrs:
            if name.startswith("on"):
                self.handlers.append([tag, name, value])
            if name in URL_ATTRS and value is not None and not value.startswith("#"):
                self.urls.append([tag, name, value])
            if name == "style" and value and "url(" in value:
                self.urls.append([tag, name, value])
        if tag == "script":
            self.in_script = True
            self.scripts.append("")
        elif tag == "style":
            self.in_style = True
            self.styles.append("")
        elif tag == "h2":
            self.h2 = ""
        elif tag == "table":
            self.section = "table"
        elif tag == "tr" and self.section == "table":
            self.row = {"id": a.get("id"), "class": a.get("class"), "cells": [], "v": [],
                        "points": None, "classes": []}
            if self.in_thead():
                self.head_row = True
            else:
                self.rows.append(self.row)
        elif tag in ("td", "th") and self.section == "table":
            self.cell = ""
            self.in_th = tag == "th"
            if tag == "td":
                self.row["cells"].append("")
                self.row["v"].append(a.get("data-v"))
                self.row["classes"].append(a.get("class"))
            else:
                self.head.append({"text": "", "t": a.get("data-t")})
        elif tag == "li" and self.section in ("risers", "fallers"):
            self.li = {"class": a.get("class"), "href": a.get("href"), "name": "", "pct": "",
                       "points": None, "title": None}
            self.movers[self.section].append(self.li)
        elif tag == "a" and self.li is not None:
            self.li["href"] = a.get("href")
        elif tag == "bdi":
            self.in_bdi = True
        elif tag == "span" and self.li is not None and a.get("class") == "p":
            self.in_p = True
        elif tag == "polyline":
            n = len(a.get("points", "").split())
            if self.li is not None:
                self.li["points"] = n
            elif self.section == "table" and self.cell is not None:
                self.row["points"] = n
        elif tag == "svg" and self.section == "table" and self.cell is not None:
            self.row["points"] = 0
        elif tag == "svg" and self.li is not None:
            self.li["points"] = 0
        elif tag == "title" and "svg" in self.stack:
            self.svg_title = ""
        elif tag == "dt":
            self.in_dt, self.dt = True, ""
        elif tag == "dd":
            self.in_dd = True
            self.facts[self.dt] = ""
        if tag not in ("meta", "polyline", "br"):
            self.stack.append(tag)

    def in_thead(self):
        return "thead" in self.stack

    def handle_endtag(self, tag):
        if tag in self.stack:
            while self.stack and self.stack.pop() != tag:
                pass
        if tag == "script":
            self.in_script = False
        elif tag == "style":
            self.in_style = False
        elif tag == "h2":
            title = self.h2 or ""
            self.section = {"Biggest risers": "risers",
                            "Biggest fallers": "fallers"}.get(title, self.section)
            if title == "All segments":
                self.section = None
            self.h2 = None
        elif tag == "table":
            self.section = None
            self.cell = None
        elif tag == "li":
            self.li = None
        elif tag == "bdi":
            self.in_bdi = False
        elif tag == "span":
            self.in_p = False
        elif tag == "title" and self.svg_title is not None:
            self.svg_titles.append(self.svg_title)
            if self.li is not None:
                self.li["title"] = self.svg_title
            self.svg_title = None
        elif tag == "dt":
            self.in_dt = False
        elif tag == "dd":
            self.in_dd = False
        elif tag in ("td", "th"):
            self.cell = None

    def handle_data(self, data):
        if self.in_script:
            self.scripts[-1] += data
            return
        if self.in_style:
            self.styles[-1] += data
            return
        if self.svg_title is not None:
            self.svg_title += data
            return
        if self.h2 is not None:
            self.h2 += data
        if self.in_dt:
            self.dt += data
        if self.in_dd:
            self.facts[self.dt] += data
        if self.li is not None:
            if self.in_bdi:
                self.li["name"] += data
            if self.in_p:
                self.li["pct"] += data
        if self.cell is not None and self.section == "table":
            if self.in_thead():
                self.head[-1]["text"] += data
            else:
                self.row["cells"][-1] += data


def main(path):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    page = Page()
    page.feed(text)
    page.close()
    css_urls = [u for s in page.styles for u in re.findall(r"url\([^)]*\)|@import[^;]*", s)]
    out = {
        "rows": page.rows, "head": page.head, "movers": page.movers, "facts": page.facts,
        "elements": page.elements, "urls": page.urls + [["style", "css", u] for u in css_urls],
        "handlers": page.handlers, "scripts": len(page.scripts),
        "script": page.scripts[0] if page.scripts else "",
        "svg_titles": page.svg_titles,
    }
    json.dump(out, sys.stdout, ensure_ascii=False)


if __name__ == "__main__":
    main(sys.argv[1])
