"""`ml-assets`: the command line for what is not a Dagster run (generate data, demo, ...)."""

from __future__ import annotations

import argparse
import os
import sys
from datetime import date, timedelta

from tqdm import tqdm

from ml_assets.settings import get_settings
from ml_assets.training.rollout_stages import STAGES


def _generate(args: argparse.Namespace) -> int:
    from ml_assets.data.demo_source import land_days
    from ml_assets.data.generator import GeneratorConfig
    from ml_assets.data.scenarios import Scenario

    settings = get_settings()
    config = GeneratorConfig.from_settings(
        settings,
        scenarios=tuple(Scenario.parse(s) for s in args.scenario),
        seed=args.seed,
        transactions_per_day=args.transactions_per_day,
    )
    start = date.fromisoformat(args.start)
    progress = tqdm(
        land_days(settings.landing_dir, start, args.days, config, args.format),
        total=args.days,
        unit="day",
        desc="generating",
    )
    rows = sum(n for _, n in progress)
    print(f"landed {rows} transactions for {args.days} day(s) in {settings.landing_dir}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from ml_assets.demo import run_demo

    return run_demo(days=args.days, workers=args.workers)


def _demo_rollout(args: argparse.Namespace) -> int:
    from ml_assets.rollout_demo import run_rollout_demo

    return run_rollout_demo()


def _features(args: argparse.Namespace) -> int:
    from ml_assets.features.registry import format_registry_table

    print(format_registry_table(), end="")
    return 0


def _serve(args: argparse.Namespace) -> int:
    from ml_assets.serving.app import serve

    serve(host=args.host, port=args.port)
    return 0


def _rollback(args: argparse.Namespace) -> int:
    from ml_assets.automation.endpoints import endpoint_urls, notify_endpoints
    from ml_assets.training.registry_reader import resolve_version
    from ml_assets.training.rollout import RolloutError, retire

    uri = get_settings().mlflow_tracking_uri
    version = args.version or resolve_version(uri, args.model, args.stage)
    if version is None:
        print(f"{args.model} has no version at stage {args.stage}; nothing to roll back")
        return 1
    try:
        moved = retire(uri, args.model, version)
    except RolloutError as error:
        print(f"ml-assets rollback: {error}", file=sys.stderr)
        return 2
    after = f"; champion is v{moved.restored} again" if moved.restored else ""
    print(f"{args.model} v{moved.version}: {moved.previous_stage} -> {moved.stage}{after}")
    for url, outcome in notify_endpoints(endpoint_urls()).items():
        print(f"  told {url} to reload: {outcome}")
    return 0


def _relocate(args: argparse.Namespace) -> int:
    from ml_assets.training.registry_location import relocate_artifacts, stored_artifact_root
    from ml_assets.training.registry_writer import EXPERIMENT_NAME

    settings = get_settings()
    old_root = args.old_root or stored_artifact_root(settings.mlflow_tracking_uri, EXPERIMENT_NAME)
    if old_root is None:
        print(f"nothing to relocate: no {EXPERIMENT_NAME} runs in {settings.mlflow_tracking_uri}")
        return 0
    moved = relocate_artifacts(settings.mlflow_tracking_uri, old_root, args.to or
                               settings.mlflow_artifact_location)  # fmt: skip
    print(f"artifact locations {moved.old_root} -> {moved.new_root}: {moved.rows} rewritten")
    return 0


def _replay(args: argparse.Namespace) -> int:
    from ml_assets.automation.replay import run_replay

    result = run_replay(get_settings(), date.fromisoformat(args.day), args.url, args.batch)
    print("\n".join(result.lines()))
    return 0


def _exporter(args: argparse.Namespace) -> int:
    import time

    from ml_assets.monitoring.exporter import start_exporter

    reports_dir = get_settings().reports_dir
    start_exporter(reports_dir, args.host, args.port)
    print(f"daily figures of {reports_dir} on http://{args.host}:{args.port}/metrics", flush=True)
    try:
        while True:  # the server runs in a daemon thread; Ctrl-C ends both
            time.sleep(3600)
    except KeyboardInterrupt:
        return 0


def _dashboard(args: argparse.Namespace) -> int:
    from ml_assets.monitoring.dashboard import write_dashboard

    print(f"wrote {write_dashboard(args.out)}")
    return 0


def _listen_on(command: argparse.ArgumentParser, port: int) -> None:
    command.add_argument("--host", default="127.0.0.1")
    command.add_argument("--port", type=int, default=port)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ml-assets", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    generate = commands.add_parser("generate", help="land generated card transactions")
    generate.add_argument(
        "--start",
        default=(date.today() - timedelta(days=30)).isoformat(),
        help="first day, YYYY-MM-DD (default: 30 days ago)",
    )
    generate.add_argument("--days", type=int, default=30)
    generate.add_argument(
        "--scenario",
        action="append",
        default=[],
        help="drift scenario as name@START..END; repeatable. Names: "
        "amount_inflation, new_merchant_category, broken_upstream",
    )
    generate.add_argument("--format", choices=["parquet", "csv"], default="parquet")
    generate.add_argument("--transactions-per-day", type=int, default=None)
    generate.add_argument("--seed", type=int, default=None)
    generate.set_defaults(handler=_generate)

    features = commands.add_parser("features", help="print the feature registry")
    features.set_defaults(handler=_features)

    serve = commands.add_parser("serve", help="serve the champion over HTTP (uvicorn)")
    _listen_on(serve, 8000)
    serve.set_defaults(handler=_serve)

    rollback = commands.add_parser(
        "rollback",
        help="take a version out of its rollout stage (default: the champion goes back to the "
        "version it replaced)",
    )
    rollback.add_argument("--model", default="fraud_student")
    rollback.add_argument(
        "--stage",
        default="champion",
        choices=list(STAGES),
        help="roll back the version at this stage",
    )
    rollback.add_argument("--version", default="", help="roll back this version, at any stage")
    rollback.set_defaults(handler=_rollback)

    relocate = commands.add_parser(
        "relocate",
        help="point MLflow's stored artifact locations at this data dir (after a copy or move)",
    )
    relocate.add_argument(
        "--from", dest="old_root", default="",
        help="the old artifact root URI (default: the one the fraud_models experiment stores)",
    )  # fmt: skip
    relocate.add_argument(
        "--to", default="", help="the new root (default: the settings' artifact location)"
    )
    relocate.set_defaults(handler=_relocate)

    replay = commands.add_parser(
        "replay",
        help="replay a landed day through the endpoint and compare with its batch scores",
    )
    replay.add_argument("--day", required=True, help="YYYY-MM-DD, a day with scored_transactions")
    replay.add_argument(
        "--url", default="", help="a running endpoint (default: start one on loopback)"
    )
    replay.add_argument("--batch", type=int, default=200, help="transactions per request")
    replay.set_defaults(handler=_replay)

    exporter = commands.add_parser(
        "exporter",
        help="serve the monitoring assets' daily figures (drift, served vs batch) to Prometheus",
    )
    _listen_on(exporter, 9108)
    exporter.set_defaults(handler=_exporter)

    dashboard = commands.add_parser("dashboard", help="write the Grafana dashboard JSON")
    dashboard.add_argument("--out", default="deploy/grafana/ml_assets_dashboard.json")
    dashboard.set_defaults(handler=_dashboard)

    demo = commands.add_parser("demo", help="land the demo days and materialize everything")
    demo.add_argument("--days", type=int, default=30)
    demo.add_argument(
        "--workers",
        type=int,
        default=min(2, os.cpu_count() or 1),
        help="days of a monitoring stage run side by side (default: up to 2, one per core)",
    )
    demo.set_defaults(handler=_demo)
    commands.add_parser(
        "demo-rollout",
        help="after `demo`: a worse and a better candidate through shadow and canary, with "
        "traffic replayed through a real endpoint",
    ).set_defaults(handler=_demo_rollout)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except (ValueError, LookupError) as error:
        print(f"ml-assets {args.command}: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
