"""metaray's Ray job submitter script, shipped as text.

`ray_job_submitter.py` is a self-contained script (standard library and Ray only) that a
submitter Job, a SidecarMode container or a stop Job runs as `python -c "<source()>"` in the stock
rayproject/ray image; see its docstring for the environment it reads and its exit codes. The
RayJob core does not import this package: the shell reads `source()` and hands it over as a value.
"""

from importlib import resources

SUCCEEDED_EXIT = 0
FAILED_EXIT = 64
STOPPED_EXIT = 65
NOT_FOUND_EXIT = 66
ERROR_EXIT = 1

SCRIPT_NAME = "ray_job_submitter.py"


def source() -> str:
    """The submitter script's text, as shipped in the package."""
    return resources.files(__name__).joinpath(SCRIPT_NAME).read_text(encoding="utf-8")
