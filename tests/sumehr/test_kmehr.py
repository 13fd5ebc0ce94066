"""KMEHR Sumehr documents: building, validation, reading, and hostile input."""

from __future__ import annotations

import re
from datetime import date, datetime

import pytest
from lxml import etree

from reconciler.sumehr.kmehr import (KMEHR_NS, KmehrError, SumehrItem, build_sumehr, sumehr_info,
                                     validate_sumehr)

INSS = "85010100123"
NS = {"k": KMEHR_NS}


def sumehr(**overrides) -> bytes:
    args = {"patient_inss": INSS, "first_name": "Marie", "last_name": "Dubois", "birth_date": "1985-01-01",
            "sex": "female", "version": 1} | overrides
    return build_sumehr(**args)


def edited(xml: bytes, change) -> bytes:
    """The document after `change(root)` has altered its tree."""
    root = etree.fromstring(xml)
    change(root)
    return etree.tostring(root)


def remove(root: etree._Element, path: str) -> None:
    for element in root.findall(path, NS):
        element.getparent().remove(element)


def set_text(root: etree._Element, path: str, text: str) -> None:
    root.find(path, NS).text = text


def test_built_sumehr_is_valid():
    assert validate_sumehr(sumehr()) == []


def test_built_sumehr_is_valid_as_text_too():
    assert validate_sumehr(sumehr().decode("utf-8")) == []


def test_sumehr_info_reads_patient_header_author_and_version():
    xml = sumehr(version=7, author_nihii="10987654321", now=datetime(2024, 3, 5, 14, 30, 9))
    info = sumehr_info(xml)
    assert info == {
        "inss": INSS, "first_name": "Marie", "last_name": "Dubois", "birth_date": "1985-01-01",
        "sex": "female", "header_id": f"10987654321.sumehr.{INSS}.7", "date": "2024-03-05", "time": "14:30:09",
        "author_nihii": "10987654321", "version": 7,
    }


def test_version_travels_as_a_local_transaction_id():
    root = etree.fromstring(sumehr(version=42))
    version_id = root.find("k:folder/k:transaction/k:id[@S='LOCAL']", NS)
    assert (version_id.get("SL"), version_id.get("SV"), version_id.text) == ("ccsync-version", "1.0", "42")


def test_built_sumehr_has_the_standard_kmehr_structure():
    root = etree.fromstring(sumehr())
    assert root.find("k:header/k:standard/k:cd[@S='CD-STANDARD']", NS) is not None
    assert root.find("k:header/k:sender/k:hcparty/k:id[@S='ID-HCPARTY']", NS).text == "12345678901"
    assert root.find("k:header/k:recipient/k:hcparty", NS) is not None
    transaction = root.find("k:folder/k:transaction", NS)
    assert transaction.find("k:author/k:hcparty/k:name", NS).text == "Dr Demo"
    kinds = {cd.text for cd in transaction.findall("k:item/k:cd[@S='CD-ITEM']", NS)}
    assert {"risk", "allergy", "healthcareelement", "medication", "vaccine"} <= kinds


def test_custom_items_replace_the_default_ones():
    items = [SumehrItem("allergy", "Latex"), SumehrItem("medication", "Paracétamol", ("CD-ATC", "1.0", "N02BE01"),
                                                        date(2020, 1, 2))]
    root = etree.fromstring(sumehr(items=items))
    found = root.findall("k:folder/k:transaction/k:item", NS)
    assert [item.find("k:content/k:text", NS).text for item in found] == ["Latex", "Paracétamol"]
    assert found[1].find("k:content/k:cd[@S='CD-ATC']", NS).text == "N02BE01"
    assert found[1].find("k:beginmoment/k:date", NS).text == "2020-01-02"


@pytest.mark.parametrize("name", [
    "<script>alert('x')</script>",
    'O\'Brien & "Fils" <b>',
    "]]><!-- --><?pi?>&amp;",
    "Łódź Ñoño 李小龍 ☃ 🩺",
])
def test_hostile_names_round_trip(name):
    xml = sumehr(first_name=name, last_name=name, author_name=name)
    assert validate_sumehr(xml) == []
    info = sumehr_info(xml)
    assert (info["first_name"], info["last_name"]) == (name, name)


def test_a_name_xml_cannot_carry_is_a_clear_error():
    with pytest.raises(KmehrError, match="cannot build the Sumehr"):
        sumehr(first_name="Marie\x00")


@pytest.mark.parametrize(("overrides", "message"), [
    ({"patient_inss": "8501010012"}, "INSS '8501010012' is not 11 digits"),
    ({"patient_inss": "85.01.01-001.23"}, "is not 11 digits"),
    ({"version": -1}, "version -1 is not a non-negative integer"),
    ({"version": "3"}, "is not a non-negative integer"),
    ({"sex": "robot"}, "sex 'robot' is not one of"),
    ({"birth_date": "01/01/1985"}, "birth date '01/01/1985' is not a date"),
])
def test_build_refuses_arguments_that_make_no_valid_sumehr(overrides, message):
    with pytest.raises(KmehrError, match=re.escape(message)):
        sumehr(**overrides)


def test_not_well_formed_xml_gives_the_parser_message():
    [problem] = validate_sumehr(b"<kmehrmessage><header></kmehrmessage>")
    assert problem.startswith("not well-formed XML: ")
    assert "mismatch" in problem


def test_empty_document_is_not_well_formed():
    [problem] = validate_sumehr(b"")
    assert problem.startswith("not well-formed XML")


def test_other_root_element_is_reported():
    assert validate_sumehr(b"<kmehrmessage/>") == [f"root element is not kmehrmessage in namespace {KMEHR_NS}"]


def test_document_without_sumehr_transaction_is_reported():
    xml = edited(sumehr(), lambda root: set_text(root, "k:folder/k:transaction/k:cd[@S='CD-TRANSACTION']",
                                                 "contactreport"))
    assert validate_sumehr(xml) == ["no sumehr transaction (cd S=CD-TRANSACTION)"]


def test_document_without_patient_is_reported():
    xml = edited(sumehr(), lambda root: remove(root, "k:folder/k:patient"))
    assert validate_sumehr(xml) == ["no patient"]


def test_patient_without_inss_is_reported():
    xml = edited(sumehr(), lambda root: remove(root, "k:folder/k:patient/k:id"))
    assert validate_sumehr(xml) == ["patient has no INSS (id S=ID-PATIENT)"]


def test_patient_with_malformed_inss_is_reported():
    xml = edited(sumehr(), lambda root: set_text(root, "k:folder/k:patient/k:id", "ABC"))
    assert validate_sumehr(xml) == ["patient INSS is not 11 digits"]


@pytest.mark.parametrize("flag", ["iscomplete", "isvalidated"])
@pytest.mark.parametrize("value", ["false", "", None])
def test_transaction_flags_must_be_true(flag, value):
    if value is None:
        xml = edited(sumehr(), lambda root: remove(root, f"k:folder/k:transaction/k:{flag}"))
    else:
        xml = edited(sumehr(), lambda root: set_text(root, f"k:folder/k:transaction/k:{flag}", value))
    assert validate_sumehr(xml) == [f"{flag} is not true"]


def test_every_problem_is_listed():
    def break_all(root):
        remove(root, "k:folder/k:patient")
        set_text(root, "k:folder/k:transaction/k:iscomplete", "false")
        set_text(root, "k:folder/k:transaction/k:isvalidated", "false")

    assert validate_sumehr(edited(sumehr(), break_all)) == [
        "no patient", "iscomplete is not true", "isvalidated is not true"]


def test_external_entities_are_never_read(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET")
    xml = (f'<?xml version="1.0"?><!DOCTYPE k [<!ENTITY xxe SYSTEM "file://{secret}">]>'
           f'<kmehrmessage xmlns="{KMEHR_NS}"><folder><patient><firstname>&xxe;</firstname>'
           f'</patient></folder></kmehrmessage>').encode()
    assert validate_sumehr(xml) == ["DOCTYPE declarations are not allowed"]
    with pytest.raises(KmehrError) as raised:
        sumehr_info(xml)
    assert "TOP-SECRET" not in str(raised.value)


def test_entity_expansion_bombs_are_refused():
    lol = '<!ENTITY a "aaaaaaaaaa">' + "".join(
        f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">' for i in range(8))
    xml = f'<?xml version="1.0"?><!DOCTYPE k [{lol}]><kmehrmessage xmlns="{KMEHR_NS}">&i;</kmehrmessage>'
    # libxml2 may stop at the amplification itself, before we see the DOCTYPE: refused either way.
    [problem] = validate_sumehr(xml.encode())
    assert problem == "DOCTYPE declarations are not allowed" or "amplification" in problem


def test_undeclared_entity_is_not_well_formed():
    [problem] = validate_sumehr(f'<kmehrmessage xmlns="{KMEHR_NS}">&nope;</kmehrmessage>'.encode())
    assert problem.startswith("not well-formed XML")


def test_text_with_a_foreign_encoding_declaration_is_read_as_text():
    xml = sumehr(first_name="Zoë").decode("utf-8").replace("encoding='UTF-8'", "encoding='ISO-8859-1'")
    assert sumehr_info(xml)["first_name"] == "Zoë"


def test_sumehr_info_refuses_a_document_it_cannot_read():
    with pytest.raises(KmehrError, match="cannot read the Sumehr: not well-formed XML"):
        sumehr_info(b"not xml at all")


def test_sumehr_info_without_version_gives_none():
    xml = edited(sumehr(), lambda root: remove(root, "k:folder/k:transaction/k:id[@S='LOCAL']"))
    assert sumehr_info(xml)["version"] is None
