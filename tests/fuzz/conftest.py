"""The fuzz corpus's one assertion: bad input ends in exit code 2 and one ``error:`` line.

Every case runs a real command's entry point in-process (``run_main``, ``eval_main``,
``trm_core.solve.main``, ...). An exception escaping it is the bug the corpus looks
for (a user would see a traceback), so it is left to fail the test as it is.
"""

from __future__ import annotations

import pytest


@pytest.fixture
def refused(capsys):
    """``refused(main, argv, *fragments)``: run ``main(argv)``, assert it exits 2 with
    exactly one ``error:`` line on stderr, the last, holding every fragment (the file,
    line, key or choices it must name) and no traceback; return that line."""

    def check(main, argv, *fragments: str) -> str:
        capsys.readouterr()
        try:
            code = main([str(arg) for arg in argv])
        except SystemExit as exit:  # argparse's own exit
            code = exit.code
        _, err = capsys.readouterr()
        lines = [line for line in err.splitlines() if line.strip()]
        errors = [line for line in lines if line.startswith("error:")]
        assert "Traceback" not in err, err
        assert code == 2, f"exit code {code}, stderr:\n{err}"
        assert len(errors) == 1 and lines[-1] == errors[0], f"not one error line:\n{err}"
        for fragment in fragments:
            assert fragment in errors[0], f"{fragment!r} not in {errors[0]!r}"
        return errors[0]

    return check
