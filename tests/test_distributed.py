"""The process pool of ``--jobs`` (convcli.distributed) against the sequential run.

The same batch run with one process and with two must write byte-identical
files and the same records; a bad file fails alone; Ctrl-C stops the
workers and leaves no partial or temporary file.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from convcli.distributed import Task, cores, execute, resolve_jobs
from convcli.engines import _bands
from convcli.errors import OptionError
from convcli.job import Destination, Job

ROOT = Path(__file__).resolve().parents[1]


def _job(**options):
    weights = np.stack([np.outer([1, 2, 1], [-1, 0, 1]), np.outer([-1, 0, 1], [1, 2, 1])]).astype(np.float32)
    return Job(weights=weights, labels=("x", "y"), bank_name="sobel",
               geometry={"padding": "same", "border": "reflect"}, **options)


def _images(folder: Path, count: int, size=(37, 53)) -> list[str]:
    rng = np.random.default_rng(4)
    folder.mkdir(exist_ok=True)
    paths = []
    for i in range(count):
        path = folder / f"img{i:02d}.png"
        Image.fromarray(rng.integers(0, 255, (*size, 3), dtype=np.uint8)).save(path)
        paths.append(str(path))
    return paths


def _tasks(paths, out: Path):
    out.mkdir(exist_ok=True)
    return [Task(i, p, Destination(output=str(out) + "/", protect=tuple(paths))) for i, p in enumerate(paths)]


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_jobs_two_equals_sequential_byte_for_byte(tmp_path):
    paths = _images(tmp_path / "in", 5)
    bad = tmp_path / "in" / "img99.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    paths.insert(2, str(bad))
    for name, jobs in (("seq", 1), ("par", 2)):
        outcomes = list(execute(_job(map_stats=True), _tasks(paths, tmp_path / name), jobs=jobs))
        assert sorted(o.task.index for o in outcomes) == list(range(len(paths)))
        outcomes.sort(key=lambda o: o.task.index)
        if jobs == 1:
            sequential = outcomes
    assert _files(tmp_path / "seq") == _files(tmp_path / "par")
    assert len(_files(tmp_path / "par")) == 2 * 5  # no temporary left, the bad file wrote nothing
    for seq, par in zip(sequential, outcomes):
        assert (seq.error is None) == (par.error is None)
        assert str(seq.error) == str(par.error)
        if seq.record is not None:
            strip = [dict(o, path=Path(o["path"]).name) for o in par.record["outputs"]]
            assert dict(par.record, outputs=strip) == dict(
                seq.record, outputs=[dict(o, path=Path(o["path"]).name) for o in seq.record["outputs"]])
    assert "img99.png" in str(outcomes[2].error)
    assert all(o.peak_rss and o.peak_rss > 10 << 20 for o in outcomes if o.record is not None)


def test_float_outputs_and_transposed_through_the_pool(tmp_path):
    paths = _images(tmp_path / "in", 3)
    job = Job(weights=np.ones((1, 3, 3), np.float32), labels=("box",), bank_name="box", transpose=True,
              geometry={"stride": 2, "padding": 1, "output_padding": 1}, out_format="npy")
    seq = {o.task.index: o.record for o in execute(job, _tasks(paths, tmp_path / "seq"), jobs=1)}
    par = {o.task.index: o.record for o in execute(job, _tasks(paths, tmp_path / "par"), jobs=2)}
    assert seq.keys() == par.keys() == {0, 1, 2}
    assert _files(tmp_path / "seq") == _files(tmp_path / "par")


def test_jobs_option_values(monkeypatch):
    assert resolve_jobs(0) == cores() and resolve_jobs(3) == 3
    with pytest.raises(OptionError, match="--jobs"):
        resolve_jobs(-1)
    monkeypatch.setenv("CONVCLI_THREADS", "3")
    assert _bands.n_workers() == 3
    monkeypatch.setenv("CONVCLI_THREADS", "zero")
    assert _bands.n_workers() == max(1, min(8, os.cpu_count() or 1))


def test_workers_get_their_share_of_threads(tmp_path):
    """Each of N workers runs cores // N engine threads (at least 1) and one BLAS thread per core share."""
    script = textwrap.dedent("""
        import os, sys
        from concurrent.futures import ProcessPoolExecutor
        import multiprocessing
        from convcli import distributed

        def probe():
            from convcli.engines import _bands
            return _bands.n_workers(), os.environ.get("OPENBLAS_NUM_THREADS")

        if __name__ == "__main__":
            with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn"),
                                     initializer=distributed._init_worker, initargs=(1,)) as pool:
                print(*pool.submit(probe).result())
    """)
    (tmp_path / "probe.py").write_text(script)
    result = subprocess.run([sys.executable, str(tmp_path / "probe.py")], capture_output=True, text=True,
                            env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=120, check=True)
    assert result.stdout.split() == ["1", "1"]


@pytest.mark.skipif(sys.platform != "linux", reason="glibc's mallopt")
def test_workers_reuse_freed_memory_across_files(tmp_path):
    """A second file's buffers reuse the first one's pages in a pool worker: touching 64 MB again costs
    (almost) no page faults; with a user's own MALLOC_* setting the allocator is left alone."""
    script = textwrap.dedent("""
        import os, resource, sys
        from concurrent.futures import ProcessPoolExecutor
        import multiprocessing
        import numpy as np
        from convcli import distributed

        def faults_of_second_file():
            for attempt in range(2):
                before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
                buffer = np.empty(64 * 2**20, np.uint8)
                buffer.fill(1)
                del buffer
            return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

        if __name__ == "__main__":
            with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"),
                                     initializer=distributed._init_worker, initargs=(1,)) as pool:
                print(pool.submit(faults_of_second_file).result())
    """)
    (tmp_path / "probe.py").write_text(script)
    env = {key: value for key, value in os.environ.items()
           if not key.startswith("MALLOC_") and key != "GLIBC_TUNABLES"}
    faults = {}
    for name, extra in (("kept", {}), ("user's own", {"MALLOC_TRIM_THRESHOLD_": "131072"})):
        result = subprocess.run([sys.executable, str(tmp_path / "probe.py")], capture_output=True, text=True,
                                env=dict(env, PYTHONPATH=str(ROOT), **extra), timeout=120, check=True)
        faults[name] = int(result.stdout)
    huge_pages = 64 * 2**20 // (2 * 2**20)  # numpy asks for transparent huge pages: ≥ 1 fault per 2 MB
    assert faults["kept"] <= 4, faults  # reused: no new pages
    assert faults["user's own"] >= huge_pages, faults  # glibc's default: mmap'd afresh, faulted again


def test_workers_leave_without_interpreter_teardown(tmp_path):
    """A worker sent home by the pool exits at once (os._exit after flushing): an object that would be
    finalised in the interpreter's teardown never is; what the worker printed still arrives."""
    script = textwrap.dedent("""
        import multiprocessing, os, sys
        from concurrent.futures import ProcessPoolExecutor
        from convcli import distributed

        class Marker:
            def __init__(self, path):
                self.path = path
            def __del__(self, os=os):
                os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY))

        def task(path):
            globals()["probe"] = Marker(path)  # freed only by a full teardown
            print("printed by the worker", end="", flush=False)
            return 1

        if __name__ == "__main__":
            with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"),
                                     initializer=distributed._init_worker, initargs=(1,)) as pool:
                assert pool.submit(task, sys.argv[1]).result() == 1
    """)
    (tmp_path / "probe.py").write_text(script)
    marker = tmp_path / "finalised"
    result = subprocess.run([sys.executable, str(tmp_path / "probe.py"), str(marker)], capture_output=True,
                            text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=120, check=True)
    assert result.stdout == "printed by the worker"
    assert not marker.exists()


def _default_sigint() -> None:
    """In the child before exec: SIGINT back to its default, so Python installs its handler even when
    the test run itself ignores SIGINT (a background job of a non-interactive shell does)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "State:\tZ" not in state


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")
def test_interrupt_stops_workers_and_leaves_no_partial_files(tmp_path):
    """SIGINT to a parent running --jobs 2: exit 130, workers gone, every output whole or absent."""
    paths = _images(tmp_path / "in", 12, size=(500, 700))
    script = textwrap.dedent(f"""
        import multiprocessing, sys
        import numpy as np
        from convcli.distributed import Task, execute
        from convcli.job import Destination, Job

        if __name__ == "__main__":
            job = Job(weights=np.ones((4, 15, 15), np.float32), labels=tuple("abcd"), bank_name="box",
                      geometry={{"padding": "same", "method": "direct"}}, compress_level=9)
            paths, out = {paths!r}, {str(tmp_path / 'out') + '/'!r}
            tasks = [Task(i, p, Destination(output=out)) for i, p in enumerate(paths)]
            try:
                for outcome in execute(job, tasks, jobs=2):
                    pids = [p.pid for p in multiprocessing.active_children()]
                    print("done", outcome.task.index, *pids, flush=True)
            except KeyboardInterrupt:
                sys.exit(130)
            sys.exit(0)
    """)
    (tmp_path / "out").mkdir()
    (tmp_path / "run.py").write_text(script)
    process = subprocess.Popen([sys.executable, str(tmp_path / "run.py")], stdout=subprocess.PIPE, text=True,
                               env=dict(os.environ, PYTHONPATH=str(ROOT)), preexec_fn=_default_sigint)
    first = process.stdout.readline().split()
    assert first[0] == "done", first
    workers = [int(pid) for pid in first[2:]]
    assert workers
    process.send_signal(signal.SIGINT)
    try:
        code = process.wait(timeout=60)
    finally:
        process.kill()
        process.stdout.close()
    assert code == 130
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(pid) for pid in workers)
    names = sorted(os.listdir(tmp_path / "out"))
    assert all(name.endswith(".png") and not name.startswith(".") for name in names), names
    assert len(names) < 4 * 12  # interrupted before the end
    for name in names:
        with Image.open(tmp_path / "out" / name) as image:
            image.load()  # whole files only


# ---------------------------------------------------------------------------
# the CLI: convcli apply -j


def _cli(*args: str, cwd: Path, **options) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "convcli", "apply", *args], cwd=cwd, capture_output=True,
                          text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=300, **options)


def test_cli_jobs_batch_equals_sequential(tmp_path):
    _images(tmp_path / "in", 4)
    (tmp_path / "in" / "broken.png").write_bytes(b"not a png")
    runs = {}
    for jobs in ("1", "2"):
        (tmp_path / f"out{jobs}").mkdir()
        result = _cli("in", "-k", "sobel", "-k", "gaussian:sigma=1", "-o", f"out{jobs}/", "--json",
                      "-j", jobs, cwd=tmp_path)
        assert result.returncode == 1, result.stderr  # the broken file fails, the others are written
        assert "broken.png" in result.stderr and "4 of 5 inputs done, 1 failed" in result.stderr
        runs[jobs] = json.loads(result.stdout.replace(f"out{jobs}/", "OUT/"))
    assert runs["1"] == runs["2"]
    assert _files(tmp_path / "out1") == _files(tmp_path / "out2")
    assert len(_files(tmp_path / "out2")) == 4 * 3


def test_cli_jobs_zero_and_bad_values(tmp_path):
    _images(tmp_path / "in", 2)
    (tmp_path / "out").mkdir()
    result = _cli("in", "-k", "sobel", "-o", "out/", "-j", "0", "-q", cwd=tmp_path)
    assert result.returncode == 0 and result.stderr == ""
    assert len(os.listdir(tmp_path / "out")) == 4
    result = _cli("in", "-k", "sobel", "-o", "out/", "-j", "-2", cwd=tmp_path)
    assert result.returncode != 0 and "--jobs" in result.stderr


@pytest.mark.skipif(sys.platform != "linux", reason="signals to a process group")
def test_cli_ctrl_c_with_jobs(tmp_path):
    """SIGINT to the process group of `convcli apply -j 2` (as a terminal sends it): exit 130, whole files."""
    _images(tmp_path / "in", 10, size=(500, 700))
    (tmp_path / "out").mkdir()
    process = subprocess.Popen(
        [sys.executable, "-m", "convcli", "apply", "in", "-k", "gaussian:sigma=4", "-k", "log:sigma=3",
         "--method", "direct", "-o", "out/", "-j", "2", "--compress-level", "9"],
        cwd=tmp_path, stderr=subprocess.PIPE, text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)),
        start_new_session=True, preexec_fn=_default_sigint)
    try:
        line = process.stderr.readline()  # the first "wrote …": workers are busy with the next files
        assert line.startswith("wrote"), line
        os.killpg(process.pid, signal.SIGINT)
        code = process.wait(timeout=60)
        rest = process.stderr.read()
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.stderr.close()
    assert code == 130, rest
    assert "interrupted" in rest and "Traceback" not in rest
    names = sorted(os.listdir(tmp_path / "out"))
    assert names and all(not name.startswith(".") for name in names), names
    assert len(names) < 2 * 10
    for name in names:
        with Image.open(tmp_path / "out" / name) as image:
            image.load()


def test_killed_pool_worker_files_are_retried(tmp_path):
    """SIGKILL a worker mid-batch: the files the broken pool took down run again on a new pool."""
    import multiprocessing

    paths = _images(tmp_path / "in", 8, size=(300, 400))
    job = Job(weights=np.ones((2, 11, 11), np.float32), labels=("a", "b"), bank_name="box",
              geometry={"padding": "same", "method": "direct"})
    outcomes = []
    for outcome in execute(job, _tasks(paths, tmp_path / "par"), jobs=2):
        if not outcomes:
            os.kill(multiprocessing.active_children()[0].pid, signal.SIGKILL)
        outcomes.append(outcome)
    assert sorted(o.task.index for o in outcomes) == list(range(8))
    assert all(o.error is None for o in outcomes), [str(o.error) for o in outcomes]
    list(execute(job, _tasks(paths, tmp_path / "seq"), jobs=1))
    made = {name: data for name, data in _files(tmp_path / "par").items() if not name.startswith(".")}
    assert made == _files(tmp_path / "seq")  # a killed worker may leave its temporary, never a partial file


def test_cli_jobs_resume_and_colliding_names_as_sequential(tmp_path):
    """--skip-existing and batch-planned names (two inputs with one stem) are those of -j 1."""
    _images(tmp_path / "a", 3)
    (tmp_path / "b").mkdir()
    Image.new("RGB", (20, 30), (10, 200, 30)).save(tmp_path / "b" / "img00.jpg")  # the stem of a/img00.png
    runs = {}
    for jobs in ("1", "2"):
        first = _cli("a", "b", "-k", "sobel", "-o", f"out{jobs}/", "-j", jobs, "-q", cwd=tmp_path)
        assert first.returncode == 0, first.stderr
        for victim in (tmp_path / f"out{jobs}").glob("img01.*"):
            victim.unlink()
        again = _cli("a", "b", "-k", "sobel", "-o", f"out{jobs}/", "-j", jobs, "--skip-existing", "--json",
                     cwd=tmp_path)
        assert again.returncode == 0, again.stderr
        summary = json.loads(again.stdout.replace(f"out{jobs}/", "OUT/"))
        runs[jobs] = (summary, _files(tmp_path / f"out{jobs}"))
    assert runs["1"] == runs["2"]
    assert len(runs["2"][0]["skipped"]) == 3 and runs["2"][0]["succeeded"] == 1


def test_a_retried_dask_batch_task_replaces_its_own_output_but_not_an_older_file(tmp_path):
    """Dask retries a task whose worker died, maybe after the first attempt renamed its output into
    place: the retry must succeed; a file that was there before the batch stays refused."""
    from convcli.distributed import _listing, _run_batch_task

    np.save(tmp_path / "a.npy", np.arange(20, dtype=np.float32).reshape(4, 5))
    np.save(tmp_path / "b.npy", np.ones((4, 5), np.float32))
    out = tmp_path / "out"
    out.mkdir()
    (out / "b.sobel.npy").write_bytes(b"older")
    job = _job()
    destination = Destination(output=str(out) + "/")
    listing = _listing([destination])
    first, _ = _run_batch_task(job, str(tmp_path / "a.npy"), destination, listing=listing)
    again, _ = _run_batch_task(job, str(tmp_path / "a.npy"), destination, listing=listing)
    assert first["outputs"] == again["outputs"]
    np.load(again["outputs"][0]["path"])
    with pytest.raises(Exception, match="exists; use --force"):
        _run_batch_task(job, str(tmp_path / "b.npy"), destination, listing=listing)
    assert (out / "b.sobel.npy").read_bytes() == b"older"
