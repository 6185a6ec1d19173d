"""Plain-text renderings of build reports and check results for the CLI."""

from __future__ import annotations

from collections.abc import Sequence

from pbx_service.audio.build import BuildReport
from pbx_service.audio.check import PromptProblem


def render_build_report(report: BuildReport) -> str:
    """One line per prompt (action, duration, why) and a summary line."""
    lines = [f"Prompts from {report.source_dir} into {report.out_dir}:"]
    width = max((len(f"{r.lang}/{r.name}") for r in report.results), default=0)
    for r in report.results:
        duration = f"{r.duration_s:5.2f} s" if r.duration_s is not None else "     - "
        lines.append(f"  {r.lang + '/' + r.name:<{width}}  {r.action:<9}  {duration}  {r.detail}")
    counts = report.counts()
    summary = ", ".join(f"{count} {action}" for action, count in counts.items() if count)
    lines.append(f"{len(report.results)} prompts: {summary or 'none found'}")
    if report.failed:
        lines.append("Fix the failed prompts above and run `pbx-service prompts build` again.")
    return "\n".join(lines)


def render_problems(problems: Sequence[PromptProblem]) -> str:
    """One line per problem and what to do, or a line saying all is well."""
    if not problems:
        return "All prompts are present and in the format Asterisk plays (8 kHz mono 16-bit WAV)."
    noun = "problem" if len(problems) == 1 else "problems"
    lines = [f"{len(problems)} prompt {noun}:"]
    lines += [f"  [{p.kind}] {p.message}" for p in problems]
    lines.append("After fixing, check again with `pbx-service prompts check`.")
    return "\n".join(lines)
