"""Safe XML parsing and small element builders shared by the KMEHR, HUB client and HUB simulator modules."""

from __future__ import annotations

from lxml import etree

from ..errors import one_line


class XmlRejected(ValueError):
    """Bytes that we refuse to treat as XML: not well-formed, or carrying a DOCTYPE.

    str() is the parser's own words (for the log); `human` says it for a person, without quoting the content.
    """

    def __init__(self, message: str, human: str):
        super().__init__(message)
        self.human = human


def _parser(force_utf8: bool) -> etree.XMLParser:
    # Patient documents and HUB answers are hostile input: no entity expansion (billion laughs, XXE),
    # no DTD or network fetch, and libxml2's size and depth limits stay on (huge_tree=False).
    # A new parser per call, because lxml parsers must not be shared between threads.
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        huge_tree=False,
        load_dtd=False,
        dtd_validation=False,
        encoding="utf-8" if force_utf8 else None,
    )


def parse(data: bytes | str | None) -> etree._Element:
    """Parse a document and return its root element, or raise XmlRejected with a one-line reason (None, a
    NULL column, is an empty document)."""
    if data is None:
        data = b""
    elif isinstance(data, (memoryview, bytearray)):
        data = bytes(data)
    force_utf8 = isinstance(data, str)
    if force_utf8:
        # lxml refuses str input that has an encoding declaration; the text is already decoded, so
        # encode it as UTF-8 and make the parser ignore whatever the declaration says.
        data = data.encode("utf-8")
    try:
        root = etree.fromstring(data, _parser(force_utf8))
    except (etree.XMLSyntaxError, ValueError) as exc:
        line = getattr(exc, "lineno", None)
        human = ("it is empty" if not data.strip() else
                 f"damaged or cut off{f' at line {line}' if line else ''}")
        raise XmlRejected(f"not well-formed XML: {one_line(str(exc)) or 'empty document'}", human) from None
    if root.getroottree().docinfo.doctype:
        # No KMEHR or SOAP message has a DTD; one that does is trying to smuggle in entities.
        raise XmlRejected("DOCTYPE declarations are not allowed", "it declares a DOCTYPE, which KMEHR never has")
    return root


def sub(parent: etree._Element, ns: str, tag: str, text: object = None, **attrib: str) -> etree._Element:
    """Append a child element {ns}tag with optional text and attributes; lxml escapes every value."""
    child = etree.SubElement(parent, f"{{{ns}}}{tag}", attrib)
    if text is not None:
        child.text = str(text)
    return child


def text_of(element: etree._Element | None) -> str | None:
    """The stripped text of an element, or None when the element is missing or empty.

    The whole text, as XPath's string value and so any HUB reads it: a comment or an element inside cannot
    make us read one value and the HUB another.
    """
    if element is None:
        return None
    return "".join(element.itertext()).strip() or None

