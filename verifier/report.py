"""The verifier's report: what was checked, the counts, every difference, and a verdict.

Two forms of the same facts: text for a person (`to_text`) and JSON for a program
(`to_obj`, `shailoo verify --json`).  The verdict is VERIFIED only if no check failed
and results.json is, byte for byte, the document rebuilt from the evidence (with
--strict, warnings fail too).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from verifier.check import ERROR, WARNING, Checked, Finding
from verifier.compare import Difference, short
from verifier.recompute import STATES, Rebuilt

REPORT_FORMAT = "shailoo-verify-report/1"


@dataclass
class Comparison:
    """results.json against the rebuilt document."""

    published: bool  # the record has a results.json
    identical: bool = False  # canonical bytes equal
    differences: list[Difference] = field(default_factory=list)  # the first ones kept
    total: int = 0  # every difference
    numbers: int = 0  # values in the rebuilt document (all compared when identical)
    stations: list[str] = field(default_factory=list)  # whose own published numbers differ
    hint: str | None = None  # a likely innocent explanation to look into (never changes ok)
    unreadable: str | None = None  # results.json is not strict JSON

    @property
    def ok(self) -> bool:
        return not self.published or self.identical


@dataclass
class Report:
    source: str
    checked: Checked
    rebuilt: Rebuilt | None
    comparison: Comparison | None
    strict: bool = False
    seconds: float = 0.0

    @property
    def errors(self) -> list[Finding]:
        out = [f for f in self.checked.findings if f.severity == ERROR]
        if self.rebuilt is not None:
            out += [Finding(ERROR, "recompute", "results", p) for p in self.rebuilt.problems]
        return out

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.checked.findings if f.severity == WARNING]

    @property
    def ok(self) -> bool:
        if self.errors or self.rebuilt is None or self.comparison is None:
            return False
        if not self.comparison.ok:
            return False
        return not (self.strict and self.warnings)

    # --- facts -------------------------------------------------------------------------------

    def not_counted(self) -> dict[str, int]:
        """Messages that verified but count for nothing, by why (test mode, bad body, ...)."""
        reasons: Counter[str] = Counter()
        if self.rebuilt is not None:
            for c in self.rebuilt.stations.values():
                for _, why in c.not_counted:
                    reasons[_category(why)] += 1
        return dict(sorted(reasons.items()))

    def unreadable_reports(self) -> list[str]:
        """Signed reports whose body does not read or exceeds the roll (the server raises
        bad_report / turnout_over_roll for these)."""
        out = []
        if self.rebuilt is not None:
            for sid, c in sorted(self.rebuilt.stations.items()):
                for seq, why in c.not_counted:
                    if _category(why) in ("body does not read", "more voted than registered"):
                        out.append(f"station {sid} seq {seq}: {why}")
        return out

    def to_obj(self) -> dict[str, Any]:
        """The machine-readable report (`--json`)."""
        c = self.checked
        chains = c.chains.values()
        obj: dict[str, Any] = {
            "format": REPORT_FORMAT,
            "ok": self.ok,
            "strict": self.strict,
            "source": self.source,
            "seconds": round(self.seconds, 3),
            "election": None
            if c.definition is None
            else {"id": c.definition.id, "hash": c.definition.election_hash},
            "trust": {
                "root_fingerprint": c.trusted_root,
                "record_root_fingerprint": c.record_root,
                "pinned": c.pinned,
                "central_certificate_fingerprint": c.central_cert,
            },
            "manifest": {"signed_by_cec_server": c.manifest_signed, **c.manifest},
            "checked": {
                "files_hashed": c.files_hashed,
                "bytes_hashed": c.bytes_hashed,
                "devices": c.devices,
                "devices_valid": c.devices_ok,
                "messages": c.message_count,
                "messages_verified": c.verified_count,
                "stations_with_messages": len(c.chains),
                "chains_complete": sum(1 for x in chains if x.complete),
                "chains_with_holes": sum(1 for x in chains if x.holes),
                "chains_broken": sum(1 for x in chains if x.breaks),
                "manual_protocols": len(c.manual),
                "scans": c.scans,
                "open_alerts": c.alerts,
            },
            "errors": [f.to_obj() for f in self.errors],
            "warnings": [f.to_obj() for f in self.warnings],
        }
        if self.rebuilt is not None:
            states = {s: 0 for s in STATES}
            for sc in self.rebuilt.stations.values():
                states[sc.state] += 1
            obj["recomputed"] = {
                "stations": len(self.rebuilt.stations),
                "by_state": states,
                "stations_with_final_asu": sum(1 for x in self.rebuilt.stations.values() if x.asu),
                "stations_with_turnout": sum(
                    1 for x in self.rebuilt.stations.values() if x.voted is not None
                ),
                "unit_tallies": self.rebuilt.tallies,
                "outcomes": self.rebuilt.outcomes,
                "not_counted": self.not_counted(),
                "unreadable_reports": self.unreadable_reports(),
            }
        cmp = self.comparison
        if cmp is not None:
            obj["comparison"] = {
                "published": cmp.published,
                "identical_bytes": cmp.identical,
                "values": cmp.numbers,
                "unreadable": cmp.unreadable,
                "differences_total": cmp.total,
                "stations_differing": cmp.stations,
                "hint": cmp.hint,
                "differences": [d.to_obj() for d in cmp.differences],
            }
        return obj

    # --- text --------------------------------------------------------------------------------

    def to_text(self, show: int = 50) -> str:
        c = self.checked
        lines: list[str] = ["Shailoo election record verification", ""]
        lines.append(f"  record    {self.source}")
        if c.definition is not None:
            lines.append(f"  election  {c.definition.id} (hash {c.definition.election_hash})")
        m = c.manifest
        if m:
            lines.append(
                f"  exported  {m.get('exported_at')}, results version {m.get('results_version')}"
            )
        lines += ["", "TRUST"]
        lines.append(f"  root fingerprint (SHA-256)  {c.trusted_root or '(none: no usable root)'}")
        if c.pinned:
            lines.append("  pinned with --root: checked against the root you gave")
        else:
            lines += [
                "  " + "!" * 78,
                "  !! WARNING: THE ROOT IS NOT PINNED. The record was checked against its own",
                "  !! root certificate, so a forger's record would pass too. Compare the",
                "  !! fingerprint above with the one the CEC publishes, or run again with",
                "  !! --root CEC-ROOT.pem.",
                "  " + "!" * 78,
            ]
        lines += ["", "CHECKS"]
        lines += self._checks()
        if self.rebuilt is not None:
            lines += ["", "RECOMPUTED FROM THE SIGNED REPORTS AND THE MANUAL COUNTS"]
            lines += self._recomputed()
        lines += ["", "COMPARED WITH results.json"]
        lines += self._compared(show)
        errors, warnings = self.errors, self.warnings
        if errors or warnings:
            lines += ["", f"FINDINGS ({len(errors)} errors, {len(warnings)} warnings)"]
            for f in [*errors, *warnings][:show]:
                lines.append(f"  {f.severity.upper():7} {f.area:9} {f.subject}: {f.message}")
            if len(errors) + len(warnings) > show:
                lines.append(f"  ... and {len(errors) + len(warnings) - show} more (--show N)")
        lines += ["", self.verdict(), ""]
        return "\n".join(lines)

    def verdict(self) -> str:
        if self.ok:
            extra = " (root not pinned: see TRUST)" if not self.checked.pinned else ""
            return f"VERDICT: VERIFIED in {self.seconds:.2f} s{extra}"
        parts = [f"{len(self.errors)} errors"]
        if self.comparison is not None and self.comparison.published:
            parts.append(f"{self.comparison.total} differences")
        if self.strict and self.warnings:
            parts.append(f"{len(self.warnings)} warnings (--strict)")
        return "VERDICT: FAILED (" + ", ".join(parts) + ")"

    def _checks(self) -> list[str]:
        c = self.checked
        areas = Counter(f.area for f in c.findings if f.severity == ERROR)
        warned = Counter(f.area for f in c.findings if f.severity == WARNING)

        def mark(*names: str) -> str:
            if any(areas[n] for n in names):
                return "[FAIL]"
            return "[warn]" if any(warned[n] for n in names) else "[ok]  "

        chains = list(c.chains.values())
        holes = sum(1 for x in chains if x.holes)
        broken = sum(1 for x in chains if x.breaks)
        signed = "[FAIL]" if areas["root"] else mark("manifest", "election")
        return [
            f"  {signed} manifest signed by the CEC server "
            f"(certificate {(c.central_cert or '?')[:16]}…), chained to the root, bound to "
            "this election and station CEC",
            f"  {mark('files')} {c.files_hashed:,} files hashed ({c.bytes_hashed:,} bytes) against "
            "the signed manifest: none changed, missing or extra"
            if not areas["files"]
            else f"  {mark('files')} {areas['files']} files changed, missing or extra "
            f"(of {c.files_hashed} listed)",
            f"  {mark('devices')} {c.devices_ok:,} of {c.devices:,} device certificates chain to "
            "the root, bound to their station and this election",
            f"  {mark('messages')} {c.verified_count:,} of {c.message_count:,} messages from "
            f"{len(chains):,} stations parse strictly and are signed by an authorised device of "
            "their station",
            f"  {mark('chains')} {len(chains) - holes - broken:,} chains complete (seq 0..n, "
            f"each prev the hash before); {holes} with holes, {broken} broken",
            f"  {mark('manual', 'scans')} {len(c.manual):,} manual-count protocols, "
            f"{c.scans:,} scans named by their SHA-256",
            "  [info] open alerts in alerts.json: "
            + (", ".join(f"{n} {s}" for s, n in sorted(c.alerts.items())) or "none"),
        ]

    def _recomputed(self) -> list[str]:
        r = self.rebuilt
        assert r is not None
        states = Counter(s.state for s in r.stations.values())
        lines = [
            f"  stations  {len(r.stations)}: "
            + ", ".join(f"{states.get(s, 0)} {s.replace('_', ' ')}" for s in STATES),
            f"  counted   {sum(1 for s in r.stations.values() if s.asu)} final ASU reports, "
            f"{sum(1 for s in r.stations.values() if s.voted is not None)} turnout figures, "
            f"{len(self.checked.manual)} manual counts",
            f"  rebuilt   {r.tallies:,} unit tallies (station, commission, district, region, "
            f"nation; ASU and manual) with shares and their bases, turnout by unit and by hour, "
            f"{r.outcomes} outcomes (seats, winners, runoff, threshold, referendum validity)",
        ]
        nc = self.not_counted()
        if nc:
            lines.append("  not counted  " + ", ".join(f"{n} {why}" for why, n in nc.items()))
        for text in self.unreadable_reports()[:20]:
            lines.append(f"    {text}")
        return lines

    def _compared(self, show: int) -> list[str]:
        cmp = self.comparison
        if cmp is None:
            return ["  [FAIL] nothing to compare: the record could not be recomputed"]
        if not cmp.published:
            return ["  [info] the record holds no results.json: nothing was published yet"]
        if cmp.identical:
            return [
                f"  [ok]   results.json is byte for byte the document rebuilt from the evidence "
                f"({cmp.numbers:,} values)"
            ]
        if cmp.unreadable is not None:
            return [f"  [FAIL] results.json is not strict JSON: {cmp.unreadable}"]
        if cmp.total == 0:
            return [
                "  [FAIL] results.json has the same values but not the canonical bytes "
                "(key order, spacing or escaping differ)"
            ]
        lines = [
            f"  [FAIL] {cmp.total} differences between results.json and the rebuilt document"
            + (f" (first {show} shown)" if cmp.total > show else "")
        ]
        if cmp.stations:
            names = ", ".join(cmp.stations[:20])
            more = f" and {len(cmp.stations) - 20} more" if len(cmp.stations) > 20 else ""
            lines.append(
                f"  stations whose published numbers differ from their evidence: {names}{more}"
            )
        if cmp.hint:
            lines.append(f"  note: {cmp.hint}")
        for d in cmp.differences[:show]:
            lines.append(f"    {d.path}")
            lines.append(f"        published   {short(d.published)}")
            lines.append(f"        recomputed  {short(d.recomputed)}")
        return lines


def _category(why: str) -> str:
    if why.startswith("test mode"):
        return "test mode"
    if why.startswith("the signed body does not read"):
        return "body does not read"
    if "registered" in why:
        return "more voted than registered"
    return "no counts in this kind"
