"""mkdocs hook: fill docs/cli.md with a reference generated from the Typer app.

The page holds a ``<!-- cli-reference -->`` marker; this hook replaces it at build time with
every command's usage, description and options, so the reference cannot drift from the code.
"""

from __future__ import annotations

from typing import Any

MARKER = "<!-- cli-reference -->"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ").strip()


def _command(command: Any, path: list[str]) -> str:
    import typer

    ctx = typer.Context(command, info_name=" ".join(path))
    pieces = [
        piece.strip("{}").upper() if piece.startswith("{") else piece
        for piece in command.collect_usage_pieces(ctx)
    ]
    usage = " ".join([*path, *pieces])
    lines = [f"## `{' '.join(path)}`\n" if len(path) > 1 else "", f"```text\n{usage}\n```\n"]
    if command.help:
        lines.append(command.help.strip() + "\n")
    args = [p for p in command.params if p.param_type_name == "argument"]
    opts = [p for p in command.params if p.param_type_name == "option" and not p.hidden]
    if args:
        lines.append("| argument | description |\n|---|---|")
        lines += [f"| `{p.name.upper()}` | {_cell(getattr(p, 'help', '') or '')} |" for p in args]
        lines.append("")
    if opts:
        lines.append("| option | default | description |\n|---|---|---|")
        for p in opts:
            names = ", ".join(f"`{o}`" for o in [*p.opts, *p.secondary_opts])
            value = getattr(p.default, "value", p.default)  # Enum choices show their value
            default = (
                "" if value in (None, False, ()) or (p.is_flag and not value) else f"`{value}`"
            )
            lines.append(f"| {names} | {default} | {_cell(p.help or '')} |")
        lines.append("")
    if hasattr(command, "list_commands"):
        for name in command.list_commands(ctx):
            lines.append(_command(command.get_command(ctx, name), [*path, name]))
    return "\n".join(lines)


def cli_reference() -> str:
    """Markdown reference for the whole ``spectral-probe`` command tree."""
    import typer.main
    from spectral_probe_cli.main import app

    return _command(typer.main.get_command(app), ["spectral-probe"])


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    if MARKER in markdown:
        return markdown.replace(MARKER, cli_reference())
    return markdown
