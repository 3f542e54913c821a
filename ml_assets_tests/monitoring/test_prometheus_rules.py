"""The alert rules and Prometheus configuration under deploy/prometheus/, checked and
unit-tested by promtool (Debian's `prometheus` package)."""

from __future__ import annotations

import re
import subprocess

import pytest
import yaml

from ml_assets.settings import Settings
from ml_assets_tests.support.servers import DEPLOY_PROMETHEUS, require_binary

RULES = DEPLOY_PROMETHEUS / "alerts.yml"
RULE_TESTS = DEPLOY_PROMETHEUS / "alerts_test.yml"


def _rules() -> list[dict]:
    return [r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]]


def _promtool(*args: str) -> subprocess.CompletedProcess:
    promtool = require_binary("promtool", "prometheus")
    return subprocess.run([promtool, *args], cwd=DEPLOY_PROMETHEUS, capture_output=True,
                          text=True, timeout=120)  # fmt: skip


@pytest.mark.slow
def test_rules_and_config_pass_promtool_check() -> None:
    rules = _promtool("check", "rules", RULES.name)
    assert rules.returncode == 0, rules.stdout + rules.stderr
    assert f"SUCCESS: {len(_rules())} rules found" in rules.stdout
    config = _promtool("check", "config", "prometheus.yml")
    assert config.returncode == 0, config.stdout + config.stderr


@pytest.mark.slow
def test_rules_unit_tests_pass_promtool_test() -> None:
    result = _promtool("test", "rules", RULE_TESTS.name)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def _who(series: str) -> tuple[str, ...]:
    """The labels that tell one job/replica/kind of an input series from another."""
    return tuple(re.findall(r'(?:job|instance|kind|report)="[^"]*"', series))


def test_every_alert_the_issue_asks_for_exists_and_is_tested_firing_and_silent() -> None:
    alerts = {r["alert"] for r in _rules() if "alert" in r}
    assert alerts >= {
        "EndpointLatencyP99OverBudget", "EndpointFallbackShareHigh", "EndpointBreakerOpen",
        "EndpointUnscoredShare", "ScrapeDown", "DriftShareHigh", "ServedBatchSkew",
    }  # fmt: skip
    fired, silent = set(), set()
    for case in yaml.safe_load(RULE_TESTS.read_text())["tests"]:
        sources = {_who(s["series"]) for s in case["input_series"]}
        for check in case.get("alert_rule_test", []):
            name, expected = check["alertname"], check["exp_alerts"]
            if expected:
                fired.add(name)
            # promtool fails on any alert not listed, so a source with no expected alert
            # (or a check expecting none) is a tested silence.
            if len(sources) > len(expected):
                silent.add(name)
    assert fired == alerts, f"alerts without a firing case: {alerts - fired}"
    assert silent == alerts, f"alerts without a silent case: {alerts - silent}"


def test_the_fallback_ceiling_is_the_daily_checks() -> None:
    exprs = {r["alert"]: r["expr"] for r in _rules() if "alert" in r}
    ceiling = Settings().max_fallback_share
    assert exprs["EndpointFallbackShareHigh"].strip().endswith(f"> {ceiling}")
