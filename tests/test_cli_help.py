"""Command help is given to the terminal as paragraphs, not as the docstring's lines (which
the help panels would print broken mid-sentence), but a click ``\\b`` example keeps its lines."""

from mlsysim.cli.app import app


def _help(name: str) -> str:
    return next(c.help for c in app.registered_commands if c.name == name)


def test_a_docstring_paragraph_is_one_line():
    text = _help("eval")
    assert text.startswith("One model on one device (or one pass split over --tp x --pp "
                           "devices): latency, throughput, bottleneck, memory per device.")
    assert "\n" not in text


def test_an_example_marked_with_b_keeps_its_lines_and_drops_the_marker():
    text = _help("calibrate")
    assert "kind,precision,m,n,k,value,unit\ngemm,bf16,4096,4096,4096,612.3,TFLOP/s\n" in text
    assert "\b" not in text
    assert "Three or more GEMM shapes fit the ramp (eta_max, tau, alpha); fewer fit" in text
