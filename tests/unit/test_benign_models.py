"""Benign artifacts written by the real libraries must scan clean (nothing at MEDIUM or above).

The allowlist is only useful if ordinary checkpoints pass it: PyTorch state_dicts, whole
``torch.nn`` modules, optimizer and training checkpoints (new zip and legacy formats),
scikit-learn estimators of many kinds (pickle and joblib, compressed several ways),
XGBoost / LightGBM models and NumPy arrays. All are generated once per session in a
temporary folder; nothing is loaded back.
"""

from __future__ import annotations

import argparse
import collections
import pickle
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest

from modelward import scan_path
from modelward.findings import Severity
from modelward.results import FileResult, Status

np = pytest.importorskip("numpy")

Writer = Callable[[Path], None]


def _torch_fixtures() -> dict[str, Writer]:
    torch = pytest.importorskip("torch")
    nn = torch.nn
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(4, 8), nn.LayerNorm(8), nn.GELU(), nn.Dropout(0.1), nn.Linear(8, 2),
    )
    encoder = nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 16, batch_first=True), 2)
    mixed = nn.ModuleDict({
        "emb": nn.Embedding(10, 4), "lstm": nn.LSTM(4, 4), "gru": nn.GRU(4, 4),
        "heads": nn.ModuleList([nn.Linear(4, 1), nn.Linear(4, 1)]),
        "params": nn.ParameterList([nn.Parameter(torch.ones(2))]),
    })
    optim = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model(torch.rand(2, 3, 8, 8)).sum().backward()
    optim.step()
    sched = torch.optim.lr_scheduler.StepLR(optim, 2)
    sched.step()
    checkpoint = {
        "epoch": 3, "model": model.state_dict(), "optim": optim.state_dict(),
        "scheduler": sched.state_dict(), "args": argparse.Namespace(lr=1e-3, name="run"),
        "rng": torch.get_rng_state(),
    }
    tensors = {str(dt): torch.ones(3, dtype=dt) for dt in (
        torch.float16, torch.bfloat16, torch.float64, torch.int8, torch.uint8, torch.bool,
        torch.int64, torch.complex64)}

    legacy = {"_use_new_zipfile_serialization": False}  # pre-1.6 sequential format

    def save(obj: object, **kw: object) -> Writer:
        return lambda p: torch.save(obj, p, **kw)

    dist = torch.distributions
    extras = {  # tensor flavours, AMP and distributions (red-team FP sweep, 2026-11)
        "grad": torch.ones(3, requires_grad=True), "sparse": torch.eye(3).to_sparse(),
        "quantized": torch.quantize_per_tensor(torch.ones(3), 0.1, 0, torch.quint8),
        "scaler": torch.amp.GradScaler("cpu").state_dict(),
        "onecycle": torch.optim.lr_scheduler.OneCycleLR(
            torch.optim.SGD(model.parameters(), lr=0.1), max_lr=0.1, total_steps=10).state_dict(),
        "normal": dist.Normal(torch.zeros(2), torch.ones(2)),
        "mvn": dist.MultivariateNormal(torch.zeros(2), torch.eye(2)),
        "categorical": dist.Categorical(probs=torch.ones(3) / 3),
        "lognormal": dist.LogNormal(0.0, 1.0),
    }

    return {
        "torch_extras.pt": save(extras),
        "torch_state_dict.pt": save(model.state_dict()),
        "torch_whole_sequential.pt": save(model),
        "torch_whole_transformer.pt": save(encoder),
        "torch_whole_mixed.pt": save(mixed),
        "torch_optimizer.pt": save(optim.state_dict()),
        "torch_checkpoint.pt": save(checkpoint),
        "torch_dtypes.pt": save(tensors),
        "torch_legacy_state_dict.pt": save(model.state_dict(), **legacy),
        "torch_legacy_checkpoint.pth": save(checkpoint, **legacy),
        "torchscript_scripted.pt": lambda p: torch.jit.script(model).save(str(p)),
        "torchscript_traced.pt": lambda p: torch.jit.trace(
            model.eval(), torch.rand(1, 3, 8, 8)).save(str(p)),
        "torchscript_encoder.pt": lambda p: torch.jit.script(encoder).save(str(p)),
    }


def _sklearn_estimators() -> dict[str, object]:
    pytest.importorskip("sklearn")
    from sklearn import (
        cluster,
        compose,
        decomposition,
        ensemble,
        feature_extraction,
        linear_model,
        naive_bayes,
        neighbors,
        neural_network,
        pipeline,
        preprocessing,
        svm,
        tree,
    )

    rng = np.random.RandomState(0)
    x = np.abs(rng.rand(40, 4))
    y = np.array([0, 1] * 20)
    texts = ["alpha beta gamma", "beta gamma delta", "gamma delta eps", "alpha eps"] * 10
    fitted: dict[str, object] = {
        "pipeline": pipeline.make_pipeline(
            preprocessing.StandardScaler(), decomposition.PCA(2),
            linear_model.LogisticRegression()).fit(x, y),
        "column_transformer": compose.ColumnTransformer(
            [("num", preprocessing.MinMaxScaler(), [0, 1]),
             ("cat", preprocessing.OneHotEncoder(handle_unknown="ignore"), [2])]).fit(x),
        "function_transformer": preprocessing.FunctionTransformer(np.log1p).fit(x),
        "random_forest": ensemble.RandomForestClassifier(n_estimators=3, random_state=0).fit(x, y),
        "gradient_boosting": ensemble.GradientBoostingRegressor(n_estimators=3).fit(x, x[:, 0]),
        "hist_gradient_boosting": ensemble.HistGradientBoostingClassifier(max_iter=3).fit(x, y),
        "decision_tree": tree.DecisionTreeClassifier().fit(x, y),
        "svc": svm.SVC(probability=True).fit(x, y),
        "kmeans": cluster.KMeans(n_clusters=2, n_init=1, random_state=0).fit(x),
        "knn": neighbors.KNeighborsClassifier(algorithm="kd_tree").fit(x, y),
        "ball_tree": neighbors.BallTree(x),
        "naive_bayes": naive_bayes.GaussianNB().fit(x, y),
        "mlp": neural_network.MLPClassifier(hidden_layer_sizes=(4,), max_iter=5).fit(x, y),
        "tfidf": feature_extraction.text.TfidfVectorizer().fit(texts),
        "stacking": ensemble.StackingClassifier(
            [("lr", linear_model.LogisticRegression()), ("dt", tree.DecisionTreeClassifier())]
        ).fit(x, y),
    }
    return fitted


def _boosters() -> dict[str, object]:
    out: dict[str, object] = {}
    rng = np.random.RandomState(0)
    x, y = rng.rand(60, 4), np.array([0, 1, 2] * 20)
    try:
        import xgboost
        out["xgboost"] = xgboost.XGBClassifier(n_estimators=2).fit(x, y)
    except ImportError:
        pass
    try:
        import lightgbm
        out["lightgbm"] = lightgbm.LGBMClassifier(n_estimators=2, verbose=-1).fit(x, y)
    except ImportError:
        pass
    return out


@pytest.fixture(scope="session")
def benign_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every benign artifact, written with the real libraries (nothing is loaded back)."""
    root = tmp_path_factory.mktemp("benign")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence and scheduler-order chatter
        writers: dict[str, Writer] = dict(_torch_fixtures())
        estimators = {**_sklearn_estimators(), **_boosters()}
    joblib = pytest.importorskip("joblib")
    for name, est in estimators.items():
        writers[f"sk_{name}.pkl"] = lambda p, e=est: p.write_bytes(pickle.dumps(e, protocol=4))
    pipe = estimators["pipeline"]
    writers["sk_pipeline_protocol2.pkl"] = lambda p: p.write_bytes(pickle.dumps(pipe, protocol=2))
    writers["sk_pipeline.joblib"] = lambda p: joblib.dump(pipe, p)
    writers["sk_forest.joblib"] = lambda p: joblib.dump(estimators["random_forest"], p)
    for comp in ("zlib", "gzip", "bz2", "xz", "lz4"):
        writers[f"sk_pipeline_{comp}.joblib"] = (
            lambda p, c=comp: joblib.dump(pipe, p, compress=(c, 3)))
    arrays = {
        "float": np.arange(12.0).reshape(3, 4), "struct": np.zeros(2, "i4,f8"),
        "rng": np.random.default_rng(0), "masked": np.ma.masked_array([1, 2], [0, 1]),
    }
    writers["numpy_pickle_p5.pkl"] = lambda p: p.write_bytes(pickle.dumps(arrays, protocol=5))
    writers["numpy_pickle_p2.pkl"] = lambda p: p.write_bytes(pickle.dumps(arrays, protocol=2))
    writers["numpy_array.npy"] = lambda p: np.save(p, arrays["float"])
    writers["numpy_arrays.npz"] = lambda p: np.savez(p, a=arrays["float"], b=arrays["struct"])
    # joblib inline arrays of every dtype kind (sizes must match joblib's reads exactly),
    # object arrays (nested pickles) and frames, with protocols 2 and 5.
    dtyped = [np.zeros(3, dtype=t) for t in (
        "u1", "i8", "f2", "c16", "?", "M8[ns]", "m8[s]", "U3", "S2", "i4,f8,U2", ">i4")]
    dtyped += [np.array([1, "x", None], dtype=object), np.asfortranarray(np.ones((3, 4))),
               np.array(2.5), np.zeros((0, 3))]
    for proto in (2, 5):
        writers[f"joblib_dtypes_p{proto}.joblib"] = (
            lambda p, pr=proto: joblib.dump(dtyped, p, protocol=pr))
    import datetime
    import decimal
    import fractions
    import pathlib
    import uuid

    stdlib = {"dt": datetime.datetime(2020, 1, 1, tzinfo=datetime.timezone.utc),
              "d": decimal.Decimal("1.5"), "f": fractions.Fraction(1, 3),
              "u": uuid.UUID(int=1), "p": pathlib.PurePosixPath("/a"),
              "od": collections.OrderedDict(a=1), "dq": collections.deque([1]),
              "dd": collections.defaultdict(list)}
    writers["stdlib_values.pkl"] = lambda p: p.write_bytes(pickle.dumps(stdlib, protocol=2))
    for name, write in writers.items():
        write(root / name)
    return root


def _names() -> list[str]:
    torch_names = [
        "torch_state_dict.pt", "torch_whole_sequential.pt", "torch_whole_transformer.pt",
        "torch_whole_mixed.pt", "torch_optimizer.pt", "torch_checkpoint.pt", "torch_dtypes.pt",
        "torch_legacy_state_dict.pt", "torch_legacy_checkpoint.pth",
        "torchscript_scripted.pt", "torchscript_traced.pt", "torchscript_encoder.pt",
    ]
    sk = [f"sk_{n}.pkl" for n in (
        "pipeline", "column_transformer", "function_transformer", "random_forest",
        "gradient_boosting", "hist_gradient_boosting", "decision_tree", "svc", "kmeans", "knn",
        "ball_tree", "naive_bayes", "mlp", "tfidf", "stacking", "xgboost", "lightgbm",
    )]
    joblibs = ["sk_pipeline_protocol2.pkl", "sk_pipeline.joblib", "sk_forest.joblib"] + [
        f"sk_pipeline_{c}.joblib" for c in ("zlib", "gzip", "bz2", "xz", "lz4")]
    numpy_files = ["numpy_pickle_p5.pkl", "numpy_pickle_p2.pkl", "numpy_array.npy",
                   "numpy_arrays.npz"]
    more = ["torch_extras.pt", "joblib_dtypes_p2.joblib", "joblib_dtypes_p5.joblib",
            "stdlib_values.pkl"]
    return torch_names + sk + joblibs + numpy_files + more


def _describe(result: FileResult) -> str:
    return "\n".join(f"{f.rule.id} {f.severity.name} {f.location} {f.message} [{f.evidence}]"
                     for f in result.findings)


@pytest.mark.parametrize("name", _names())
def test_benign_artifact_is_clean(benign_dir: Path, name: str) -> None:
    path = benign_dir / name
    if not path.exists():  # an optional library (xgboost, lightgbm) is not installed
        pytest.skip(f"{name} was not generated")
    report = scan_path(path, raise_internal=True)
    (result,) = report.files
    assert result.status is Status.SCANNED, _describe(result)
    assert result.format is not None
    worst = [f for f in result.findings if f.severity >= Severity.MEDIUM]
    assert not worst, _describe(result)
