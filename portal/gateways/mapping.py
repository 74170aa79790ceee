"""YAML code mappings: load and validate them (naming file and line), and look codes up."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from portal.statuses import GatewayStatus

REQUIRED_TOP = ("provider", "source", "default", "retry", "codes")
REQUIRED_RETRY = ("resend_after_timeout", "duplicate_window_seconds", "lookup")
REQUIRED_CODE = ("description", "status", "guidance")


class MappingError(Exception):
    """A mapping file that cannot be used; the message names the file and line."""


@dataclass(frozen=True)
class CodeEntry:
    code: str
    status: GatewayStatus
    description: str
    guidance: str
    line: int
    unmapped: bool = False


@dataclass(frozen=True)
class RetrySafety:
    resend_after_timeout: bool
    duplicate_window_seconds: int
    lookup: str


@dataclass(frozen=True)
class CodeMapping:
    path: str
    provider: str
    source: str
    default: GatewayStatus
    retry: RetrySafety
    codes: dict[str, CodeEntry]

    def rule_for(self, entry: CodeEntry) -> str:
        """Which line of which file gave an entry its status, as the review shows it."""
        name = f"{Path(self.path).parent.name}/{Path(self.path).name}"
        if entry.unmapped:
            return f"{name}: unmapped, default {self.default}"
        return f"{name} line {entry.line}"

    def lookup(self, code: str) -> CodeEntry:
        """The entry for a provider code; an unknown code falls back to the default, marked."""
        entry = self.codes.get(str(code))
        if entry is not None:
            return entry
        return CodeEntry(
            code=str(code),
            status=self.default,
            description="Code not in Settle's mapping",
            guidance=f"Unmapped code: add it to {Path(self.path).name} after checking the provider's docs.",
            line=0,
            unmapped=True,
        )


def load(path: str | Path) -> CodeMapping:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise MappingError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else 0
        problem = getattr(exc, "problem", None) or str(exc)
        raise MappingError(f"{path}:{line}: not valid YAML: {problem}") from None
    return _Reader(path).mapping(root)


class _Reader:
    """Walks the composed YAML nodes, so that every error can name its line."""

    def __init__(self, path: Path):
        self.path = path

    def fail(self, node, message: str):
        line = node.start_mark.line + 1 if node is not None else 1
        raise MappingError(f"{self.path}:{line}: {message}")

    def fields(self, node, what: str, required: tuple[str, ...]) -> dict[str, tuple]:
        if not isinstance(node, yaml.MappingNode):
            self.fail(node, f"{what} must be a mapping of keys to values")
        seen: dict[str, tuple] = {}
        for key_node, value_node in node.value:
            key = key_node.value
            if key in seen:
                self.fail(key_node, f"duplicate key {key!r} in {what}")
            seen[key] = (key_node, value_node)
        for name in required:
            if name not in seen:
                self.fail(node, f"{what} is missing the field {name!r}")
        return seen

    def text(self, node, what: str) -> str:
        if not isinstance(node, yaml.ScalarNode) or not str(node.value).strip():
            self.fail(node, f"{what} must be a non-empty text")
        return str(node.value).strip()

    def status(self, node, what: str) -> GatewayStatus:
        name = self.text(node, what)
        try:
            status = GatewayStatus(name)
        except ValueError:
            allowed = ", ".join(s.value for s in GatewayStatus.answered())
            self.fail(node, f"unknown status {name!r} for {what}; use one of: {allowed}")
        if status is GatewayStatus.PENDING:
            self.fail(node, f"{what} cannot be Pending: it is not an answer")
        return status

    def _default(self, node) -> GatewayStatus:
        status = self.status(node, "default")
        if status is GatewayStatus.SUCCESS:
            # An unknown code must never create a payment.
            self.fail(node, "default cannot be Success: an unknown code must not count as paid")
        return status

    def boolean(self, node, what: str) -> bool:
        value = self.text(node, what).lower()
        if value not in ("true", "false"):
            self.fail(node, f"{what} must be true or false")
        return value == "true"

    def integer(self, node, what: str) -> int:
        value = self.text(node, what)
        if not value.isdigit():
            self.fail(node, f"{what} must be a whole number of seconds")
        return int(value)

    def mapping(self, root) -> CodeMapping:
        if root is None:
            raise MappingError(f"{self.path}:1: the file is empty")
        top = self.fields(root, "the mapping file", REQUIRED_TOP)
        retry = self.fields(top["retry"][1], "retry", REQUIRED_RETRY)
        codes_node = top["codes"][1]
        codes = {}
        for code, (key_node, value_node) in self.fields(codes_node, "codes", ()).items():
            entry = self.fields(value_node, f"code {code!r}", REQUIRED_CODE)
            codes[code] = CodeEntry(
                code=code,
                status=self.status(entry["status"][1], f"code {code!r}"),
                description=self.text(entry["description"][1], f"description of {code!r}"),
                guidance=self.text(entry["guidance"][1], f"guidance of {code!r}"),
                line=key_node.start_mark.line + 1,
            )
        if not codes:
            self.fail(codes_node, "codes must list at least one code")
        return CodeMapping(
            path=str(self.path),
            provider=self.text(top["provider"][1], "provider"),
            source=self.text(top["source"][1], "source"),
            default=self._default(top["default"][1]),
            retry=RetrySafety(
                resend_after_timeout=self.boolean(
                    retry["resend_after_timeout"][1], "retry.resend_after_timeout"
                ),
                duplicate_window_seconds=self.integer(
                    retry["duplicate_window_seconds"][1], "retry.duplicate_window_seconds"
                ),
                lookup=self.text(retry["lookup"][1], "retry.lookup"),
            ),
            codes=codes,
        )
