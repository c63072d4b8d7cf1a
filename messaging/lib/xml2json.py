"""An XForm instance as CommCare's JSON (Dimagi's xml2json), from a parsed ElementTree element.

Rules (as CommCare HQ shows a form's ``form`` object):
- The root's tag is ``#type``; every attribute is ``"@name"`` (its local name).
- ``@xmlns`` appears on an element whose namespace differs from its parent's (on
  the root, whenever it has one).
- An element with neither attributes nor children (nor a new namespace) is its
  text, ``""`` when empty; one with attributes or children keeps its text as
  ``#text`` (whitespace between children is not text).
- A child tag met twice becomes a list, in document order (two case blocks:
  ``"case": [{...}, {...}]``). Every value is a string.
"""

from __future__ import annotations

from xml.etree.ElementTree import Element

__all__ = ["local_name", "namespace_of", "xform_json"]


def namespace_of(tag: str) -> str:
    """The namespace of an ElementTree tag (``{ns}local``), ``""`` when it has none."""
    return tag[1:].split("}", 1)[0] if tag.startswith("{") else ""


def local_name(tag: str) -> str:
    """The tag without its namespace."""
    return tag.split("}", 1)[1] if tag.startswith("{") else tag


def _element(element: Element, parent_namespace: str):
    namespace = namespace_of(element.tag)
    out: dict = {}
    if namespace and namespace != parent_namespace:
        out["@xmlns"] = namespace
    for key, value in element.attrib.items():
        out["@" + local_name(key)] = value
    for child in element:
        name = local_name(child.tag)
        value = _element(child, namespace)
        if name in out:
            out[name] = [*out[name], value] if isinstance(out[name], list) else [out[name], value]
        else:
            out[name] = value
    text = element.text or ""
    if not out:
        return text
    if text.strip():
        out["#text"] = text.strip()
    return out


def xform_json(root: Element) -> dict:
    """The form's JSON: ``{"#type": <root tag>, "@xmlns": ..., "@name": ..., <answers>...}``."""
    body = _element(root, "")
    return {"#type": local_name(root.tag), **(body if isinstance(body, dict) else {"#text": body})}
