"""The hybrid router: WASM by default, Node only when the config says so.

``sandbox.backend = "hybrid"`` routes a run to Node when the rule matches
(``node_rule = "uses_require"``: the code calls ``require(...)``) or, otherwise, for a share
``node_ratio`` (0..1) of the runs, spread evenly (a credit counter, not a coin: a ratio of 0.25
sends exactly every fourth run). Every other run goes to WASM. A run is never retried on the
other backend: a WASM failure is the result (no silent fallback to the weaker boundary).
"""

from __future__ import annotations

import re
import threading
from typing import Any

from .node import NodeBackend
from .result import ExecutionContext, ExecutionResult, SandboxBackend
from .wasm import WasmBackend

__all__ = ["NODE_RULES", "HybridRouter"]

_REQUIRE = re.compile(r"\brequire\s*\(")
NODE_RULES: dict[str, re.Pattern[str] | None] = {"none": None, "uses_require": _REQUIRE}


class HybridRouter:
    """A SandboxBackend that picks WASM or Node per run; results keep the backend that ran."""

    name = "hybrid"

    def __init__(
        self,
        wasm: WasmBackend,
        node: NodeBackend,
        *,
        node_ratio: float = 0.0,
        node_rule: str = "none",
    ) -> None:
        if not 0.0 <= node_ratio <= 1.0:
            raise ValueError(f"node_ratio must be within 0..1, got {node_ratio}")
        if node_rule not in NODE_RULES:
            raise ValueError(f"node_rule must be one of {', '.join(NODE_RULES)}, got {node_rule!r}")
        self.wasm = wasm
        self.node = node
        self.node_ratio = node_ratio
        self.node_rule = node_rule
        self._credit = 0.0
        self._lock = threading.Lock()

    def choose(self, code: str) -> SandboxBackend:
        pattern = NODE_RULES[self.node_rule]
        if pattern is not None and pattern.search(code):
            return self.node
        with self._lock:
            self._credit += self.node_ratio
            if self._credit >= 1.0 - 1e-9:
                self._credit -= 1.0
                return self.node
        return self.wasm

    def execute(self, code: str, context: ExecutionContext) -> ExecutionResult:
        return self.choose(code).execute(code, context)

    def backends(self) -> list[SandboxBackend]:
        return [self.wasm, self.node]

    def describe(self) -> dict[str, Any]:
        return {"routing": {"node_ratio": self.node_ratio, "node_rule": self.node_rule}}

    def close(self) -> None:
        self.wasm.close()
        self.node.close()
