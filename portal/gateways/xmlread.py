"""Reading a gateway's XML answer: untrusted input, parsed with defusedxml, names without namespace."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import defusedxml.ElementTree as defused
from defusedxml import DefusedXmlException


def local(tag: str) -> str:
    """An element's name without its namespace: CyberSource changes the namespace per version."""
    return tag.rsplit("}", 1)[-1]


def parse_xml(body: str) -> ET.Element | None:
    """The document's root, or None when the body is not XML (or is XML that tries entity
    expansion or external references: an answer is untrusted input, read with defusedxml).
    A UTF-8 BOM is allowed in front."""
    # requests decodes an unlabelled text/xml body as ISO-8859-1, which turns the BOM into three chars.
    text = body.removeprefix("\ufeff").removeprefix("\u00ef\u00bb\u00bf").strip()
    if not text:
        return None
    try:
        return defused.fromstring(text)
    except (ET.ParseError, DefusedXmlException):
        return None


def children(element: ET.Element, name: str) -> list[ET.Element]:
    return [child for child in element if local(child.tag) == name]


def child_text(element: ET.Element, name: str) -> str | None:
    found = children(element, name)
    return (found[0].text or "").strip() if found else None
