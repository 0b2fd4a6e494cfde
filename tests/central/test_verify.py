"""Every payload that is not a real station's signed message for this election is refused,
with a reason that names what is wrong."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from central.kit import CentralKit
from central.verify import MAX_MESSAGE_SIZE, AuthorisedDevice, Refused, Verifier
from crypto import certs, keys
from crypto.envelope import sign_envelope
from provisioning.keyceremony import issue_device
from tests.support.provisioned import NOW, Provisioned
from tests.support.signed import PREFIX, DeviceSigner


@pytest.fixture(scope="module")
def kit(provisioned: Provisioned) -> CentralKit:
    return provisioned.central_kit()


def verifier(kit: CentralKit) -> Verifier:
    devices = [AuthorisedDevice(d.station_id, d.device_id, d.cert) for d in kit.devices]
    return Verifier(kit.definition, kit.root_cert, devices, topic_prefix=PREFIX,
                    clock=lambda: NOW + dt.timedelta(days=7))  # fmt: skip


def stations(p: Provisioned) -> tuple[DeviceSigner, DeviceSigner]:
    a, b = p.definition.stations[:2]
    return DeviceSigner(p, a.number), DeviceSigner(p, b.number)


def refused(v: Verifier, topic: str, payload: bytes) -> Refused:
    with pytest.raises(Refused) as e:
        v.check(topic, payload)
    return e.value


def test_a_stations_own_signed_message_is_accepted(
    provisioned: Provisioned, kit: CentralKit
) -> None:
    a, _ = stations(provisioned)
    env = a.turnout(3)
    assert verifier(kit).check(a.topic("turnout"), env.to_bytes()) == env


def test_one_changed_byte_is_a_forgery(provisioned: Provisioned, kit: CentralKit) -> None:
    a, _ = stations(provisioned)
    raw = a.turnout(3).to_bytes().replace(b'"voted":3', b'"voted":4')
    r = refused(verifier(kit), a.topic("turnout"), raw)
    assert r.kind == "forged" and "signature does not verify" in r.reason


def test_another_stations_key_cannot_sign_for_a_station(
    provisioned: Provisioned, kit: CentralKit
) -> None:
    a, b = stations(provisioned)
    b.station_id = a.station_id  # b's device signs a message claiming to be station a
    env = b.turnout(1)
    r = refused(verifier(kit), a.topic("turnout"), env.to_bytes())
    assert r.kind == "unknown_device" and "not authorised for station" in r.reason


def test_a_message_published_on_another_stations_topic_is_refused(
    provisioned: Provisioned, kit: CentralKit
) -> None:
    a, b = stations(provisioned)
    r = refused(verifier(kit), b.topic("turnout"), a.turnout(1).to_bytes())
    assert r.kind == "forged" and "published on" in r.reason


def test_a_forged_root_cannot_authorise_a_device(provisioned: Provisioned, kit: CentralKit) -> None:
    a, _ = stations(provisioned)
    fake_key = keys.generate_signing_key()
    fake_root = certs.make_root(fake_key, not_before=NOW - dt.timedelta(days=1),
                                not_after=NOW + dt.timedelta(days=365))  # fmt: skip
    from provisioning.keyceremony import RootCA

    creds = issue_device(RootCA(fake_key, fake_root), station_id=a.station_id,
                         election_hash=kit.definition.election_hash, now=NOW,
                         until=NOW + dt.timedelta(days=30), device_id=a.device_id)  # fmt: skip
    v = verifier(kit)
    v.authorise(AuthorisedDevice(a.station_id, a.device_id, creds.signing_cert))
    a.key = keys.load_private_key(creds.signing_key_pem, creds.passphrase)
    r = refused(v, a.topic("turnout"), a.turnout(1).to_bytes())
    assert r.kind == "forged" and "certificate refused" in r.reason


def test_a_spare_authorised_by_the_cec_is_accepted(
    provisioned: Provisioned, kit: CentralKit
) -> None:
    a, _ = stations(provisioned)
    creds = issue_device(provisioned.root, station_id=a.station_id,
                         election_hash=kit.definition.election_hash, now=NOW,
                         until=NOW + dt.timedelta(days=30), device_id="spare-1")  # fmt: skip
    a.key = keys.load_private_key(creds.signing_key_pem, creds.passphrase)
    a.device_id = "spare-1"
    v = verifier(kit)
    env = a.turnout(2)
    assert refused(v, a.topic("turnout"), env.to_bytes()).kind == "unknown_device"
    v.authorise(AuthorisedDevice(a.station_id, "spare-1", creds.signing_cert))
    assert v.check(a.topic("turnout"), env.to_bytes()) == env


def test_a_replay_from_another_election_is_refused(
    provisioned: Provisioned, kit: CentralKit
) -> None:
    a, _ = stations(provisioned)
    env = sign_envelope(a.key, kind="turnout", election="ab" * 32, station=a.station_id,
                        device=a.device_id, seq=0, prev="0" * 64, time="2026-11-29T08:00:00Z",
                        body={"voted": 1})  # fmt: skip
    r = refused(verifier(kit), a.topic("turnout"), env.to_bytes())
    assert r.kind == "wrong_election" and "another election" in r.reason


@pytest.mark.parametrize(
    "payload, why",
    [
        (b"", "not a valid signed envelope"),
        (b"\xff\xfe garbage", "not a valid signed envelope"),
        (b'{"kind": "turnout"}', "not a valid signed envelope"),
        (b"[1, 2, 3]", "not a valid signed envelope"),
    ],
)
def test_malformed_payloads_are_refused_with_the_reason(
    provisioned: Provisioned, kit: CentralKit, payload: bytes, why: str
) -> None:
    a, _ = stations(provisioned)
    r = refused(verifier(kit), a.topic("turnout"), payload)
    assert r.kind == "malformed" and why in r.reason


def test_an_unknown_kind_is_refused(provisioned: Provisioned, kit: CentralKit) -> None:
    a, _ = stations(provisioned)
    env = a.sign("results_override", {"x": 1})
    r = refused(verifier(kit), a.topic("results_override"), env.to_bytes())
    assert r.kind == "malformed" and "unknown message kind" in r.reason


def test_an_oversized_payload_is_refused_before_parsing(
    provisioned: Provisioned, kit: CentralKit
) -> None:
    a, _ = stations(provisioned)
    payload = json.dumps({"pad": "x" * MAX_MESSAGE_SIZE}).encode()
    r = refused(verifier(kit), a.topic("turnout"), payload)
    assert r.kind == "oversized" and str(MAX_MESSAGE_SIZE) in r.reason


def test_a_topic_outside_the_station_tree_is_refused(kit: CentralKit) -> None:
    r = refused(verifier(kit), "shailoo/v1/results/all", b"{}")
    assert r.kind == "malformed" and "not a station up topic" in r.reason


def test_certificates_checked_at_start_decide_as_at_the_first_message(
    provisioned: Provisioned, kit: CentralKit
) -> None:
    a, b = stations(provisioned)
    fake_key = keys.generate_signing_key()
    fake_root = certs.make_root(fake_key, not_before=NOW - dt.timedelta(days=1),
                                not_after=NOW + dt.timedelta(days=365))  # fmt: skip
    from provisioning.keyceremony import RootCA

    creds = issue_device(RootCA(fake_key, fake_root), station_id=a.station_id,
                         election_hash=kit.definition.election_hash, now=NOW,
                         until=NOW + dt.timedelta(days=30), device_id=a.device_id)  # fmt: skip
    v = verifier(kit)
    v.authorise(AuthorisedDevice(a.station_id, a.device_id, creds.signing_cert))
    assert v.check_certificates() == len(kit.devices) - 1  # all but the forged one
    a.key = keys.load_private_key(creds.signing_key_pem, creds.passphrase)
    r = refused(v, a.topic("turnout"), a.turnout(1).to_bytes())
    assert r.kind == "forged" and "certificate refused" in r.reason
    env = b.turnout(2)
    assert v.check(b.topic("turnout"), env.to_bytes()) == env
