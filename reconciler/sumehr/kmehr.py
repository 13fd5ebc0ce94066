"""KMEHR Sumehr documents: build one, check that one is a publishable Sumehr, read what a HUB request needs."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime

from lxml import etree

from . import xmlsafe as _xml
from ..errors import CcsyncError

KMEHR_NS = "http://www.ehealth.fgov.be/standards/kmehr/schema/v1"
NS = {"k": KMEHR_NS}

# ccsync's own version number of a patient's Sumehr travels as a LOCAL transaction id with this label,
# so the HUB (and the simulator) can tell an older document from a newer one.
VERSION_LABEL = "ccsync-version"

_STANDARD = "20161201"  # the KMEHR standard release that Sumehr 2.0 documents declare
_SEXES = {"m": "male", "male": "male", "f": "female", "female": "female",
          "x": "undefined", "undefined": "undefined", "u": "unknown", "unknown": "unknown"}
_INSS = re.compile(r"[0-9]{11}")  # ASCII digits: an INSS in other digits is not the number the HUB files under
_LIFECYCLE = {"vaccine": "administrated", "medication": "active", "healthcareelement": "active",
              "problem": "active", "allergy": "active", "adr": "active", "risk": "active",
              "socialrisk": "active"}


class KmehrError(CcsyncError):
    """A document that cannot be read as KMEHR, or arguments that cannot make a valid one."""


@dataclass(frozen=True)
class SumehrItem:
    """One item of a Sumehr: its CD-ITEM kind (risk, allergy, medication…), a text, an optional code."""

    kind: str
    text: str
    code: tuple[str, str, str] | None = None  # (S, SV, value), e.g. ("ICPC", "2", "T90")
    begin: date | None = None
    lang: str = "fr"


DEFAULT_ITEMS = (
    SumehrItem("risk", "Travail prolongé sur écran"),
    SumehrItem("socialrisk", "Vit seul(e)"),
    SumehrItem("allergy", "Pénicillines", ("CD-ATC", "1.0", "J01CA"), date(2009, 5, 14)),
    SumehrItem("adr", "Ticlopidine : éruption cutanée", ("CD-ATC", "1.0", "B01AC05"), date(2013, 6, 21)),
    SumehrItem("healthcareelement", "Diabète de type 2", ("ICPC", "2", "T90"), date(2015, 3, 2)),
    SumehrItem("healthcareelement", "Hypertension artérielle", ("ICPC", "2", "K86"), date(2012, 11, 8)),
    SumehrItem("problem", "Lombalgie chronique", ("ICPC", "2", "L03"), date(2018, 1, 15)),
    SumehrItem("medication", "Metformine 850 mg, 1 comprimé 2 x par jour", ("CD-ATC", "1.0", "A10BA02"),
               date(2015, 3, 2)),
    SumehrItem("vaccine", "Rappel tétanos-diphtérie", ("CD-VACCINEINDICATION", "1.0", "tetanus"),
               date(2021, 9, 30)),
)


# --- checking --------------------------------------------------------------------------------------
# Every problem is a sentence for the person who must fix the document in the practice's application.
# None of them quotes the document's content: a reason is stored, replicated and shown, and a name or
# an INSS in it would be patient data in an error text.

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_TIME = re.compile(r"\d{2}:\d{2}:\d{2}(\.\d+)?")
_INSS_SEPARATORS = re.compile(r"[\s./-]")


def normalize_inss(value: object) -> str | None:
    """An INSS as its 11 digits ("85.01.01-001.23" and "85010100123" are the same), or None if it is not one."""
    if value is None:
        return None
    digits = _INSS_SEPARATORS.sub("", str(value))
    return digits if _INSS.fullmatch(digits) else None


def validate_sumehr(xml: bytes | str, patient_inss: str | None = None) -> list[str]:
    """The problems that keep this document from being published; an empty list means it may be sent.

    A publishable Sumehr is a KMEHR message with exactly one folder, exactly one patient with one INSS,
    and exactly one transaction, a Sumehr with an author, a date and a time, marked complete and
    validated. With `patient_inss` (the INSS in the patient's own record), the document's patient must
    be that patient: a document for anyone else is never sent.
    """
    try:
        root = _xml.parse(xml)
    except _xml.XmlRejected as exc:
        return [f"the document is not readable XML ({exc.human})"]
    if root.tag != f"{{{KMEHR_NS}}}kmehrmessage":
        return ["the document is not a KMEHR message (its root element is not kmehrmessage)"]
    problems = _header_problems(root)
    folders = root.findall("k:folder", NS)
    if len(folders) != 1:
        problems.append("the document has no folder" if not folders else
                        f"the document has {len(folders)} folders: a Sumehr is about one patient, in one folder")
        return problems
    folder = folders[0]
    problems += _patient_problems(root, folder, patient_inss)
    problems += _transaction_problems(root, folder)
    return problems


def _header_problems(root: etree._Element) -> list[str]:
    header = root.find("k:header", NS)
    if header is None:
        return ["the document has no header"]
    return _moment_problems(header, "the document's header")


def _moment_problems(element: etree._Element, what: str) -> list[str]:
    problems = []
    for tag, pattern in (("date", _DATE), ("time", _TIME)):
        value = _xml.text_of(element.find(f"k:{tag}", NS))
        if value is None:
            problems.append(f"{what} has no {tag}")
        elif not pattern.fullmatch(value) or (tag == "date" and not _is_date(value)):
            problems.append(f"{what} has a {tag} that is not a valid {tag}")
    return problems


def _is_date(value: str) -> bool:
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


def _patient_problems(root: etree._Element, folder: etree._Element, expected: str | None) -> list[str]:
    patients = list(root.iter(f"{{{KMEHR_NS}}}patient"))
    if len(patients) != 1 or patients[0].getparent() is not folder:
        return ["the document names no patient" if not patients else
                f"the document names {len(patients)} patients: a Sumehr is about one patient"]
    ids = [id_ for id_ in patients[0].iterfind("k:id", NS) if _is_patient_id(id_)]
    if not ids:
        return ["the document's patient has no INSS"]
    if any(len(id_) for id_ in ids):  # comments, processing instructions or elements inside: text split in pieces
        return ["the document's patient has an INSS with markup inside it"]
    ids = {_xml.text_of(id_) for id_ in ids}
    if None in ids:
        return ["the document's patient has an empty INSS"]
    numbers = {normalize_inss(value) for value in ids}
    if None in numbers:
        return ["the document's patient has an INSS that is not 11 digits"]
    if len(numbers) > 1:
        return [f"the document's patient has {len(numbers)} different INSS"]
    if expected is not None:
        wanted = normalize_inss(expected)
        if wanted is None:
            return ["this patient's record has no valid INSS (11 digits): fill it in, so that the document "
                    "can be checked to be about this patient"]
        if numbers != {wanted}:
            return ["the document is for another patient (its INSS is not the one in this patient's record)"]
    return []


def _transaction_problems(root: etree._Element, folder: etree._Element) -> list[str]:
    sumehrs = [t for t in root.iter(f"{{{KMEHR_NS}}}transaction") if is_sumehr(t)]
    if not sumehrs:
        return ["the document has no Sumehr transaction"]
    if len(sumehrs) > 1:
        return [f"the document has {len(sumehrs)} Sumehr transactions: one is expected"]
    transaction = sumehrs[0]
    others = [t for t in folder.iterfind("k:transaction", NS) if t is not transaction]
    if transaction.getparent() is not folder or others:
        return ["the document has other transactions besides the Sumehr: only the Sumehr is sent"]
    problems = []
    if transaction.find("k:author/k:hcparty", NS) is None:
        problems.append("the Sumehr has no author")
    problems += _moment_problems(transaction, "the Sumehr")
    for flag, word in (("iscomplete", "complete"), ("isvalidated", "validated")):
        if _xml.text_of(transaction.find(f"k:{flag}", NS)) != "true":
            problems.append(f"the Sumehr is not marked {word} ({flag} is not true)")
    return problems


def is_sumehr(transaction: etree._Element) -> bool:
    """Whether a KMEHR transaction is a Sumehr (cd S=CD-TRANSACTION is sumehr)."""
    return any(cd.get("S") == "CD-TRANSACTION" and _xml.text_of(cd) == "sumehr"
               for cd in transaction.iterfind("k:cd", NS))


def _sumehr_transaction(root: etree._Element) -> etree._Element | None:
    for transaction in root.iterfind("k:folder/k:transaction", NS):
        if is_sumehr(transaction):
            return transaction
    return None


def _folder_of(root: etree._Element, transaction: etree._Element | None) -> etree._Element | None:
    return transaction.getparent() if transaction is not None else root.find("k:folder", NS)


# ID-PATIENT is the KMEHR scheme; older software still writes the retired "INSS" scheme.
_PATIENT_ID_SCHEMES = ("ID-PATIENT", "INSS")


def _is_patient_id(id_: etree._Element) -> bool:
    """Whether an id names the patient's INSS. The scheme is read as loosely as any HUB might read it (an XML
    Schema token: spaces collapsed; and in any case), so that no INSS escapes the check by its spelling."""
    return " ".join((id_.get("S") or "").split()).upper() in _PATIENT_ID_SCHEMES


def _patient_inss(patient: etree._Element) -> str | None:
    for id_ in patient.iterfind("k:id", NS):
        if _is_patient_id(id_):
            return _xml.text_of(id_)
    return None


# --- reading ---------------------------------------------------------------------------------------


def sumehr_info(xml: bytes | str) -> dict:
    """The fields a HUB request and the panel need: patient, header id/date/time, author, version.

    Keys: inss, first_name, last_name, birth_date, sex, header_id, date, time, author_nihii, version
    (int, or None when the document carries no ccsync version). Missing fields are None.
    """
    try:
        root = _xml.parse(xml)
    except _xml.XmlRejected as exc:
        raise KmehrError(f"cannot read the Sumehr: {exc}") from None
    if root.tag != f"{{{KMEHR_NS}}}kmehrmessage":
        raise KmehrError(f"cannot read the Sumehr: root element is not kmehrmessage in namespace {KMEHR_NS}")
    transaction = _sumehr_transaction(root)
    folder = _folder_of(root, transaction)
    patient = folder.find("k:patient", NS) if folder is not None else None
    return {
        **_patient_fields(patient),
        "header_id": _xml.text_of(root.find("k:header/k:id[@S='ID-KMEHR']", NS)),
        "date": _xml.text_of(root.find("k:header/k:date", NS)),
        "time": _xml.text_of(root.find("k:header/k:time", NS)),
        "author_nihii": _author_nihii(transaction),
        "version": _version(transaction),
    }


def _patient_fields(patient: etree._Element | None) -> dict:
    if patient is None:
        return dict.fromkeys(("inss", "first_name", "last_name", "birth_date", "sex"))
    return {
        "inss": _patient_inss(patient),
        "first_name": _xml.text_of(patient.find("k:firstname", NS)),
        "last_name": _xml.text_of(patient.find("k:familyname", NS)),
        "birth_date": _xml.text_of(patient.find("k:birthdate/k:date", NS)),
        "sex": _xml.text_of(patient.find("k:sex/k:cd", NS)),
    }


def _author_nihii(transaction: etree._Element | None) -> str | None:
    if transaction is None:
        return None
    return _xml.text_of(transaction.find("k:author/k:hcparty/k:id[@S='ID-HCPARTY']", NS))


def _version(transaction: etree._Element | None) -> int | None:
    if transaction is None:
        return None
    for id_ in transaction.iterfind("k:id", NS):
        if id_.get("S") == "LOCAL" and id_.get("SL") == VERSION_LABEL:
            text = _xml.text_of(id_)
            return int(text) if text is not None and text.isascii() and text.isdigit() else None
    return None


# --- building --------------------------------------------------------------------------------------


def build_sumehr(patient_inss: str, first_name: str, last_name: str, birth_date: date | str, sex: str,
                 version: int, author_nihii: str = "12345678901", author_name: str = "Dr Demo",
                 items: list[SumehrItem] | None = None, now: datetime | None = None) -> bytes:
    """A complete, validated KMEHR Sumehr message (UTF-8 bytes) for one patient, carrying `version`.

    `items` default to a plausible demo set (DEFAULT_ITEMS); `now` (default: the current local time)
    stamps the header and the transaction. Raises KmehrError for arguments that cannot make a valid Sumehr.
    """
    _check_arguments(patient_inss, version)
    now = now or datetime.now().astimezone()
    root = etree.Element(f"{{{KMEHR_NS}}}kmehrmessage", nsmap={None: KMEHR_NS})
    try:
        _add_header(root, f"{author_nihii}.sumehr.{patient_inss}.{version}", author_nihii, author_name, now)
        folder = _xml.sub(root, KMEHR_NS, "folder")
        _add_id(folder, "1")
        _add_patient(folder, patient_inss, first_name, last_name, _as_date(birth_date), _as_sex(sex))
        _add_transaction(folder, version, author_nihii, author_name, now,
                         DEFAULT_ITEMS if items is None else items)
    except ValueError as exc:  # lxml refuses NUL bytes and control characters, which XML cannot carry
        raise KmehrError(f"cannot build the Sumehr: {exc}") from None
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def _check_arguments(patient_inss: str, version: int) -> None:
    if not isinstance(patient_inss, str) or not _INSS.fullmatch(patient_inss):
        raise KmehrError(f"INSS {patient_inss!r} is not 11 digits: give the patient's national number")
    if isinstance(version, bool) or not isinstance(version, int) or version < 0:
        raise KmehrError(f"Sumehr version {version!r} is not a non-negative integer")


def _as_date(value: date | str) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise KmehrError(f"birth date {value!r} is not a date (YYYY-MM-DD)") from None


def _as_sex(value: str) -> str:
    try:
        return _SEXES[str(value).strip().lower()]
    except KeyError:
        raise KmehrError(f"sex {value!r} is not one of male, female, undefined, unknown") from None


def _add_id(parent: etree._Element, value: str) -> None:
    _xml.sub(parent, KMEHR_NS, "id", value, S="ID-KMEHR", SV="1.0")


def _add_cd(parent: etree._Element, scheme: str, scheme_version: str, value: str) -> None:
    _xml.sub(parent, KMEHR_NS, "cd", value, S=scheme, SV=scheme_version)


def _add_header(root: etree._Element, header_id: str, nihii: str, name: str, now: datetime) -> None:
    header = _xml.sub(root, KMEHR_NS, "header")
    _add_cd(_xml.sub(header, KMEHR_NS, "standard"), "CD-STANDARD", "1.15", _STANDARD)
    _add_id(header, header_id)
    _xml.sub(header, KMEHR_NS, "date", now.strftime("%Y-%m-%d"))
    _xml.sub(header, KMEHR_NS, "time", now.strftime("%H:%M:%S"))
    add_physician(_xml.sub(header, KMEHR_NS, "sender"), nihii, name)
    recipient = _xml.sub(_xml.sub(header, KMEHR_NS, "recipient"), KMEHR_NS, "hcparty")
    _add_cd(recipient, "CD-HCPARTY", "1.1", "hub")
    _xml.sub(recipient, KMEHR_NS, "name", "HUB")


def add_physician(parent: etree._Element, nihii: str, name: str) -> None:
    """Append an hcparty for a physician (NIHII number and name) to a sender, author or request element."""
    hcparty = _xml.sub(parent, KMEHR_NS, "hcparty")
    _xml.sub(hcparty, KMEHR_NS, "id", nihii, S="ID-HCPARTY", SV="1.0")
    _add_cd(hcparty, "CD-HCPARTY", "1.1", "persphysician")
    _xml.sub(hcparty, KMEHR_NS, "name", name)


def _add_patient(folder: etree._Element, inss: str, first_name: str, last_name: str, birth: date,
                 sex: str) -> None:
    patient = _xml.sub(folder, KMEHR_NS, "patient")
    _xml.sub(patient, KMEHR_NS, "id", inss, S="ID-PATIENT", SV="1.0")
    _xml.sub(patient, KMEHR_NS, "firstname", first_name)
    _xml.sub(patient, KMEHR_NS, "familyname", last_name)
    _xml.sub(_xml.sub(patient, KMEHR_NS, "birthdate"), KMEHR_NS, "date", birth.isoformat())
    _add_cd(_xml.sub(patient, KMEHR_NS, "sex"), "CD-SEX", "1.1", sex)


def _add_transaction(folder: etree._Element, version: int, nihii: str, name: str, now: datetime,
                     items: list[SumehrItem] | tuple[SumehrItem, ...]) -> None:
    transaction = _xml.sub(folder, KMEHR_NS, "transaction")
    _add_id(transaction, "1")
    _xml.sub(transaction, KMEHR_NS, "id", version, S="LOCAL", SV="1.0", SL=VERSION_LABEL)
    _add_cd(transaction, "CD-TRANSACTION", "1.9", "sumehr")
    _xml.sub(transaction, KMEHR_NS, "date", now.strftime("%Y-%m-%d"))
    _xml.sub(transaction, KMEHR_NS, "time", now.strftime("%H:%M:%S"))
    add_physician(_xml.sub(transaction, KMEHR_NS, "author"), nihii, name)
    _xml.sub(transaction, KMEHR_NS, "iscomplete", "true")
    _xml.sub(transaction, KMEHR_NS, "isvalidated", "true")
    for number, item in enumerate(items, start=1):
        _add_item(transaction, number, item)


def _add_item(transaction: etree._Element, number: int, item: SumehrItem) -> None:
    element = _xml.sub(transaction, KMEHR_NS, "item")
    _add_id(element, str(number))
    _add_cd(element, "CD-ITEM", "1.11", item.kind)
    if item.code is not None:
        _add_cd(_xml.sub(element, KMEHR_NS, "content"), *item.code)
    _xml.sub(_xml.sub(element, KMEHR_NS, "content"), KMEHR_NS, "text", item.text, L=item.lang)
    if item.begin is not None:
        _xml.sub(_xml.sub(element, KMEHR_NS, "beginmoment"), KMEHR_NS, "date", item.begin.isoformat())
    if item.kind in _LIFECYCLE:
        _add_cd(_xml.sub(element, KMEHR_NS, "lifecycle"), "CD-LIFECYCLE", "1.3", _LIFECYCLE[item.kind])
    _xml.sub(element, KMEHR_NS, "isrelevant", "true")
