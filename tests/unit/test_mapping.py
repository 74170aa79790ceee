"""Mapping files: a bad one names its file and line; an unknown code falls back, marked."""

import textwrap

import pytest

from portal.gateways import registry
from portal.gateways.mapping import MappingError, load
from portal.statuses import GatewayStatus

GOOD = """\
provider: Test
source: a test
default: System Fail
retry:
  resend_after_timeout: false
  duplicate_window_seconds: 120
  lookup: by reference
codes:
  "100":
    description: Approved
    status: Success
    guidance: Nothing to do.
  "200":
    description: Declined
    status: Decline
    guidance: Retry later.
"""


def write(tmp_path, text):
    path = tmp_path / "codes.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def test_a_good_mapping_loads_with_codes_as_text(tmp_path):
    mapping = load(write(tmp_path, GOOD))
    assert mapping.lookup("100").status is GatewayStatus.SUCCESS
    assert mapping.lookup("200").line == 13
    assert mapping.retry.duplicate_window_seconds == 120
    assert mapping.retry.resend_after_timeout is False


def test_an_unknown_code_falls_back_to_the_default_and_is_marked(tmp_path):
    entry = load(write(tmp_path, GOOD)).lookup("999")
    assert entry.status is GatewayStatus.SYSTEM_FAIL
    assert entry.unmapped is True
    assert "codes.yaml" in entry.guidance


def test_malformed_yaml_names_file_and_line(tmp_path):
    path = write(tmp_path, GOOD.replace("  lookup: by reference", "  lookup: [unclosed"))
    with pytest.raises(MappingError, match=rf"{path}:\d+: not valid YAML"):
        load(path)


def test_an_unknown_status_names_its_line(tmp_path):
    path = write(tmp_path, GOOD.replace("status: Decline", "status: Declined"))
    with pytest.raises(MappingError, match=rf"{path}:15: unknown status 'Declined'"):
        load(path)


def test_a_duplicate_code_names_its_line(tmp_path):
    text = GOOD + '  "100":\n    description: Again\n    status: Success\n    guidance: x\n'
    path = write(tmp_path, text)
    with pytest.raises(MappingError, match=rf"{path}:17: duplicate key '100'"):
        load(path)


def test_a_missing_field_names_its_entry(tmp_path):
    path = write(tmp_path, GOOD.replace("    guidance: Retry later.\n", ""))
    with pytest.raises(MappingError, match=r":14: code '200' is missing the field 'guidance'"):
        load(path)


def test_pending_is_not_an_answer(tmp_path):
    path = write(tmp_path, GOOD.replace("default: System Fail", "default: Pending"))
    with pytest.raises(MappingError, match=":3: default cannot be Pending"):
        load(path)


def test_an_empty_file_is_refused(tmp_path):
    with pytest.raises(MappingError, match=":1: the file is empty"):
        load(write(tmp_path, ""))


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(MappingError, match="cannot read"):
        load(tmp_path / "nope.yaml")


def test_every_shipped_mapping_is_valid():
    mappings = registry.check_mappings()
    assert "sandbox" in mappings
    assert all(m.codes for m in mappings.values())


def test_a_bad_shipped_mapping_stops_start_up(tmp_path, monkeypatch):
    from portal import create_app

    bad = write(tmp_path, GOOD.replace("status: Success", "status: Great"))
    monkeypatch.setattr(registry, "mapping_path", lambda name: bad)
    with pytest.raises(MappingError, match=rf"{bad}:11"):
        create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://"})
    registry.shipped_mapping.cache_clear()


def test_success_cannot_be_the_default(tmp_path):
    path = write(tmp_path, GOOD.replace("default: System Fail", "default: Success"))
    with pytest.raises(MappingError, match=":3: default cannot be Success"):
        load(path)
