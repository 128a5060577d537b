"""The restricted unpickler: refuses every global it was not given (no code of the file
runs), reads the numpy scalars of the benchmark files."""

import os
import pickle
import pickletools

import numpy as np
import pytest

from supernet.errors import SerializationError
from supernet.tabular.nas_bench_graph import DATASETS, bench_file
from supernet.tabular.unpickle import NUMPY_SCALARS, restricted_load, restricted_loads


class _Touch:
    """A pickle payload: unpickling it calls ``open(marker, "w")``, creating the file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return open, (self.marker, "w")


class _System:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.mark.parametrize("payload", [_Touch, _System])
def test_a_crafted_pickle_is_refused_and_runs_nothing(tmp_path, payload):
    # The payload is real: plain pickle runs it.
    witness = tmp_path / "witness"
    pickle.loads(pickle.dumps(payload(witness)))
    assert witness.exists()
    marker = tmp_path / "marker"
    path = tmp_path / "evil.bench"
    path.write_bytes(pickle.dumps({0: {"valid_perf": payload(marker)}}, protocol=3))
    with pytest.raises(SerializationError, match=rf"{path}: refused to unpickle global "
                                                 r"'(io\.open|posix\.system)'"):
        restricted_load(str(path), NUMPY_SCALARS)
    assert not marker.exists()


def test_numpy_globals_are_checked():
    assert restricted_loads(pickle.dumps({"a": 1.0}), NUMPY_SCALARS, "x") == {"a": 1.0}
    assert restricted_loads(pickle.dumps(np.int32(-3)), NUMPY_SCALARS, "x") == -3
    # a dtype the reader does not allow (object), and a scalar of the wrong byte count
    bad = pickle.dumps(np.dtype("O"), protocol=3)
    with pytest.raises(SerializationError, match=r"x: not a readable pickle.*numpy\.dtype\('O8?'\)"):
        restricted_loads(bad, NUMPY_SCALARS, "x")
    good = pickle.dumps(np.float64(2.5), protocol=3)
    short = good.replace(np.float64(2.5).tobytes(), b"\x00" * 4).replace(b"C\x08", b"C\x04")
    with pytest.raises(SerializationError, match="expected 8 bytes"):
        restricted_loads(short, NUMPY_SCALARS, "x")


def test_the_benchmark_files_name_only_the_allowed_globals():
    from nas_bench_graph.readbench import light_read

    for dataset in ("cora", "proteins"):
        with open(bench_file(dataset), "rb") as f:
            data = f.read()
        names = {arg for op, arg, _ in pickletools.genops(data) if op.name == "GLOBAL"}
        assert {tuple(n.split(" ")) for n in names} <= set(NUMPY_SCALARS)
        table = restricted_load(bench_file(dataset), NUMPY_SCALARS)
        assert table == light_read(dataset)  # the package's own (plain pickle) reading
    assert len(DATASETS) == 9
