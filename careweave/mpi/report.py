"""Printing an evaluation :class:`~careweave.mpi.evaluate.Report` as ``rich`` tables.

Rules:
1. :func:`report_tables` builds the tables (summary, subgroups, rules, timings) and
   :func:`print_report` prints them to a console the caller owns (a new one on stdout if none).
2. The goals of the MPI issue are printed beside the measures they apply to, with a tick or a
   cross: zero people wrongly merged, pairwise precision at least 0.999, recall at least 0.98.
"""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from careweave.mpi.evaluate import MISSED_REASONS, Report
from careweave.mpi.rules import RULES

__all__ = ["GOALS", "print_report", "report_tables"]

GOALS = {"wrongly_merged_persons": 0, "precision": 0.999, "recall": 0.98}


def _mark(ok: bool) -> str:
    return "[green]yes[/green]" if ok else "[red]no[/red]"


def _summary(report: Report) -> Table:
    q, p, th = report.quality, report.pairs, report.thresholds
    table = Table(title=f"MPI evaluation: {report.source}")
    for column in ("measure", "value", "goal", "met"):
        table.add_column(column, justify="left" if column == "measure" else "right")
    rows = [
        ("records / people", f"{report.records:,} / {report.persons:,}", "", ""),
        ("model", report.model_version, "", ""),
        ("thresholds certain / possible", f"{th.certain:g} / {th.possible:g}", "", ""),
        ("pairwise precision", f"{q.pairs.precision:.5f}", f">= {GOALS['precision']}",
         _mark(q.pairs.precision >= GOALS["precision"])),
        ("pairwise recall", f"{q.pairs.recall:.4f}", f">= {GOALS['recall']}",
         _mark(q.pairs.recall >= GOALS["recall"])),
        ("pairwise F1", f"{q.pairs.f1:.4f}", "", ""),
        ("recall at zero false merges", f"{p.recall_at_zero_false_merges:.4f}", "", ""),
        ("  weight needed (max wrong pair)", f"{p.zero_false_merge_weight:.2f}", "", ""),
        ("recall with review (auto + possible)", f"{p.recall_with_review:.4f}", "", ""),
        ("recall of pairs no safety rule holds back", f"{report.recall_unheld:.4f}", "", ""),
        ("  true pairs held back by a safety rule", f"{p.held_true_pairs:,}", "", ""),
        ("people wrongly merged", f"{q.wrongly_merged_persons:,} in {q.wrongly_merged_clusters:,} clusters",
         f"{GOALS['wrongly_merged_persons']}", _mark(q.wrongly_merged_persons == 0)),
        ("people split", f"{q.split_persons:,}", "", ""),
        ("people resolved exactly", f"{q.resolved_persons:,} ({q.resolved_persons / max(1, q.persons):.2%})",
         "", ""),
        ("candidate pairs (blocking recall)",
         f"{p.candidate_pairs:,} ({p.true_candidate_pairs / max(1, q.pairs.true_pairs):.4f})", "", ""),
        ("certain / possible pairs", f"{p.certain_pairs:,} / {p.possible_pairs:,}", "", ""),
        ("wrong pairs certain / possible", f"{p.false_certain:,} / {p.false_possible:,}", "", ""),
        ("links refused by clustering", f"{report.refused_links:,}", "", ""),
    ]  # fmt: skip
    for row in rows:
        table.add_row(*row)
    return table


def _groups(report: Report) -> Table:
    table = Table(title="Accuracy by age group and sex")
    for column in ("age", "sex", "people", "records", "pair recall", "resolved", "split", "merged"):
        table.add_column(column, justify="left" if column in ("age", "sex") else "right")
    for g in report.quality.groups:
        table.add_row(
            g.age_band,
            g.sex,
            f"{g.persons:,}",
            f"{g.records:,}",
            f"{g.recall:.4f}",
            f"{g.resolved_share:.2%}",
            f"{g.split:,}",
            f"{g.merged:,}",
        )
    return table


def _rules(report: Report) -> Table:
    table = Table(title="Safety rules fired on candidate pairs")
    for column in ("rule", "kind", "true pairs", "wrong pairs"):
        table.add_column(column, justify="left" if column in ("rule", "kind") else "right")
    for code, (true, wrong) in sorted(report.pairs.rules.items()):
        table.add_row(code, RULES[code].kind.value, f"{true:,}", f"{wrong:,}")
    return table


def _missed(report: Report) -> Table:
    true_pairs = report.quality.pairs.true_pairs or 1
    table = Table(title="True pairs not linked, by reason")
    for column in ("reason", "pairs", "share of true pairs"):
        table.add_column(column, justify="left" if column == "reason" else "right")
    for reason in MISSED_REASONS:
        count = report.pairs.missed.get(reason, 0)
        table.add_row(reason, f"{count:,}", f"{count / true_pairs:.4f}")
    ceiling = 1 - report.pairs.placeholder_pairs / true_pairs
    table.add_row("recall ceiling of the placeholder rule", "", f"{ceiling:.4f}")
    return table


def _timings(report: Report) -> Table:
    t = report.timings
    table = Table(title="Runtime")
    table.add_column("stage")
    table.add_column("seconds", justify="right")
    for stage, seconds in (
        ("normalise", t.normalise),
        ("estimate (EM)", t.estimate),
        ("block", t.block),
        ("compare + weigh", t.score),
        ("cluster + measure", t.cluster),
        ("total", t.total),
    ):
        table.add_row(stage, f"{seconds:.2f}")
    table.add_row("pairs scored per second", f"{report.pairs_per_second:,.0f}")
    return table


def report_tables(report: Report) -> list[Table]:
    """The report as tables (rule 1)."""
    return [_summary(report), _groups(report), _rules(report), _missed(report), _timings(report)]


def print_report(report: Report, console: Console | None = None) -> None:
    """Print the report's tables (rule 1)."""
    out = console or Console()
    for table in report_tables(report):
        out.print(table)
