"""Progress of long commands: a bar on a terminal, lines in a log."""
import io

from housing_api.ops import progress


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_off_a_terminal_a_step_is_lines_at_its_start_every_interval_and_end():
    out = io.StringIO()
    with progress.Progress("scoring", total=300, unit="rows", stream=out,
                           interval=0) as bar:
        for _ in range(3):
            bar.update(100, postfix="2 refused")
    lines = out.getvalue().splitlines()
    assert lines[0] == "scoring: 0 of 300 rows"
    assert lines[1].startswith("scoring: 100 of 300 rows, ")
    assert "left; 2 refused" in lines[1]
    assert lines[-1].startswith("scoring: done 300 rows (")
    assert lines[-1].endswith("; 2 refused")
    assert "\r" not in out.getvalue()


def test_on_a_terminal_a_step_is_a_bar_with_its_rate():
    out = Terminal()
    with progress.Progress("training", total=10, unit="steps", stream=out) as bar:
        for _ in range(10):
            bar.update()
    assert "\r" in out.getvalue()
    assert "10/10" in out.getvalue()
    assert "steps/s" in out.getvalue()


def test_a_failed_step_says_where_it_stopped():
    out = io.StringIO()
    try:
        with progress.Progress("search", total=5, unit="trials", stream=out) as bar:
            bar.update()
            raise RuntimeError
    except RuntimeError:
        pass
    assert out.getvalue().splitlines()[-1].startswith(
        "search: stopped after 1 trials, ")


def test_work_outside_a_command_shows_nothing():
    with progress.steps("folds", total=5) as bar:
        bar.update()
    assert isinstance(bar, progress.Silent)


def test_a_command_shows_its_outer_steps_and_tells_its_listener():
    out, seen = io.StringIO(), []
    with progress.shown(stream=out, interval=0, listener=seen.append):
        with progress.steps("rolling origin", total=2, unit="cut-offs") as outer:
            with progress.steps("boosted model", total=10) as inner:
                inner.update()
            outer.update(postfix="cut-off 2015-01")
            outer.update(postfix="cut-off 2015-03")
        with progress.steps("time split") as later:
            pass
    assert isinstance(inner, progress.Silent)  # one bar at a time
    assert not isinstance(later, progress.Silent)
    text = out.getvalue()
    assert "boosted model" not in text
    assert "rolling origin: done 2 cut-offs in 0 s; cut-off 2015-03" in text
    assert "time split: done in 0 s" in text
    last = [state for state in seen if state["step"] == "rolling origin"][-1]
    assert last["done"] == last["total"] == 2 and last["unit"] == "cut-offs"
    assert last["note"] == "cut-off 2015-03"
    assert seen[-1]["step"] == "time split"
