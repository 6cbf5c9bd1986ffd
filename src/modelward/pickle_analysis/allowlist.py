"""The allowlist: exact callables (module and qualified name) that real checkpoints import.

Only what is named here is SAFE; everything else a pickle imports is at least MEDIUM.
Entries are exact ``module`` / ``qualname`` pairs, never whole packages: scikit-learn,
PyTorch and NumPy each ship dataset downloaders, hub loaders, nested ``load`` functions
and test helpers that spawn processes (see `catalogue.py`).

How the lists were built (re-run these steps when a library adds classes):

- PyTorch: ``torch._weights_only_unpickler._get_allowed_globals()`` of torch 2.13.0, plus
  the ``GLOBAL`` opcodes of ``torch.save`` output (state_dicts, whole modules from
  ``torch.nn.modules``, optimizers, schedulers, legacy format) and every ``nn.Module``,
  optimizer and scheduler class defined in ``torch.nn.modules`` / ``torch.optim``.
- NumPy 2.x (and 1.x names under ``numpy.core``): pickles of arrays, scalars, masked and
  record arrays, ``RandomState`` / ``Generator``, with protocols 2 to 5; ufuncs and scalar
  types, which estimators keep as parameters (``FunctionTransformer(func=np.log1p)``).
- scikit-learn 1.9: every class of ``sklearn.utils.all_estimators()`` plus the helper
  classes found when fitting each estimator (and meta-estimators, pipelines, searches) on
  tiny data and reading the ``GLOBAL`` opcodes of their pickles with ``pickletools.genops``.
- XGBoost 3.2, LightGBM 4.7, joblib 1.6: pickles and ``joblib.dump`` of their models.
- Standard library: the constructors those pickles use (``collections``, ``datetime``,
  ``builtins`` value types, ``copyreg`` reconstruction helpers, ...).

Callables that call one of their arguments while loading are listed in `CALLS_ARGUMENTS`:
they are safe only if what flows into them is (the pickle machine checks that).
"""

from __future__ import annotations

from typing import Final

# scikit-learn's table, the largest, lives in its own module.
from modelward.pickle_analysis.allowlist_sklearn import SKLEARN

__all__ = ["CALLED_POSITIONS", "CALLS_ARGUMENTS", "REFERENCE_ONLY", "SAFE_GLOBALS"]

# Standard library: value types and the reconstruction helpers pickle itself emits.
STDLIB: Final[dict[str, tuple[str, ...]]] = {
    # Value types. Not ``type``, ``getattr``, ``eval``...: see catalogue.py.
    "builtins": (
        "bool", "bytearray", "bytes", "complex", "dict", "Ellipsis", "float", "frozenset", "int",
        "list", "NotImplemented", "object", "range", "set", "slice", "str", "tuple",
    ),
    # ``_codecs.encode`` turns the latin-1 strings protocols 0-2 use for bytes back into bytes.
    "_codecs": ("encode",),
    "codecs": ("encode",),
    # defaultdict stores its factory (classified on its own) and calls it with no
    # arguments only on a missing key, after loading.
    "collections": (
        "ChainMap", "Counter", "OrderedDict", "UserDict", "UserList", "UserString", "defaultdict",
        "deque",
    ),
    "_collections": ("OrderedDict", "defaultdict", "deque"),
    # copyreg._reconstructor(cls, base, state) calls base.__new__(cls) and base.__init__;
    # __newobj__ / __newobj_ex__ call cls.__new__. All their arguments are classified.
    "copyreg": ("__newobj__", "__newobj_ex__", "_reconstructor"),
    "argparse": ("Namespace",),
    "array": ("_array_reconstructor", "array"),
    "datetime": ("date", "datetime", "time", "timedelta", "timezone"),
    "decimal": ("Decimal",),
    "enum": ("Enum", "IntEnum", "IntFlag", "Flag", "StrEnum"),
    "fractions": ("Fraction",),
    # Constructing a path is harmless; its methods (read_text, unlink...) are catalogued.
    "pathlib": ("Path", "PosixPath", "PurePath", "PurePosixPath", "PureWindowsPath", "WindowsPath"),
    "re": ("_compile",),
    "types": ("SimpleNamespace",),
    "uuid": ("UUID", "SafeUUID"),
    "zoneinfo": ("ZoneInfo",),
}

# PyTorch core: the weights-only unpickler's set (torch 2.13.0) and what torch.save emits.
TORCH_CORE: Final[dict[str, tuple[str, ...]]] = {
    "torch": (
        "Size", "Tensor", "device", "dtype", "finfo", "iinfo", "memory_format", "layout",
        # storage classes (legacy typed storages are wrapped by the loader, never called)
        "BFloat16Storage", "BoolStorage", "ByteStorage", "CharStorage", "ComplexDoubleStorage",
        "ComplexFloatStorage", "DoubleStorage", "FloatStorage", "HalfStorage", "IntStorage",
        "LongStorage", "QInt32Storage", "QInt8Storage", "QUInt2x4Storage", "QUInt4x2Storage",
        "QUInt8Storage", "ShortStorage", "UntypedStorage", "TypedStorage",
        # legacy tensor classes
        "BFloat16Tensor", "BoolTensor", "ByteTensor", "CharTensor", "DoubleTensor", "FloatTensor",
        "HalfTensor", "IntTensor", "LongTensor", "ShortTensor",
        # dtypes (and their aliases), layouts, memory formats, quantization schemes
        "bfloat16", "bits16", "bits1x8", "bits2x4", "bits4x2", "bits8", "bool", "cdouble",
        "cfloat", "chalf", "complex128", "complex32", "complex64", "double", "float", "float16",
        "float32", "float4_e2m1fn_x2", "float64", "float8_e4m3fn", "float8_e4m3fnuz",
        "float8_e5m2", "float8_e5m2fnuz", "float8_e8m0fnu", "half", "int", "int1", "int16",
        "int2", "int3", "int32", "int4", "int5", "int6", "int64", "int7", "int8", "long",
        "qint32", "qint8", "quint2x4", "quint4x2", "quint8", "short", "uint1", "uint16", "uint2",
        "uint3", "uint32", "uint4", "uint5", "uint6", "uint64", "uint7", "uint8",
        "strided", "sparse_coo", "sparse_csr", "sparse_csc", "sparse_bsr", "sparse_bsc", "jagged",
        "preserve_format", "contiguous_format", "channels_last", "channels_last_3d",
        "per_tensor_affine", "per_channel_affine", "per_tensor_symmetric",
        "per_channel_symmetric", "per_channel_affine_float_qparams",
    ),
    "torch.cuda": (
        "BFloat16Storage", "BFloat16Tensor", "BoolStorage", "BoolTensor", "ByteStorage",
        "ByteTensor", "CharStorage", "CharTensor", "ComplexDoubleStorage", "ComplexFloatStorage",
        "DoubleStorage", "DoubleTensor", "FloatStorage", "FloatTensor", "HalfStorage",
        "HalfTensor", "IntStorage", "IntTensor", "LongStorage", "LongTensor", "ShortStorage",
        "ShortTensor",
    ),
    "torch.sparse": (
        "BFloat16Tensor", "ByteTensor", "CharTensor", "DoubleTensor", "FloatTensor", "HalfTensor",
        "IntTensor", "LongTensor", "ShortTensor",
    ),
    "torch.cuda.sparse": (
        "BFloat16Tensor", "ByteTensor", "CharTensor", "DoubleTensor", "FloatTensor", "HalfTensor",
        "IntTensor", "LongTensor", "ShortTensor",
    ),
    "torch.storage": ("TypedStorage", "UntypedStorage", "_LegacyStorage"),
    "torch._utils": (
        "_rebuild_device_tensor_from_cpu_tensor", "_rebuild_device_tensor_from_numpy",
        "_rebuild_meta_tensor_no_storage", "_rebuild_nested_tensor", "_rebuild_parameter",
        "_rebuild_parameter_with_state", "_rebuild_qtensor", "_rebuild_sparse_tensor",
        "_rebuild_tensor", "_rebuild_tensor_v2", "_rebuild_tensor_v3", "_rebuild_wrapper_subclass",
        "_rebuild_xla_tensor", "_rebuild_mps_tensor",
    ),
    # _rebuild_from_type_v2(func, new_type, args, state) calls func(*args): see CALLS_ARGUMENTS.
    "torch._tensor": ("_rebuild_from_type_v2",),
    "torch.serialization": ("_get_layout", "StorageType"),
    "torch.nn.modules.module": ("_IncompatibleKeys",),
    "torch.torch_version": ("TorchVersion",),
    # torch.Generator pickles as Generator(device) plus BUILD (seed, offset, state tensor);
    # its __setstate__ only restores those (torch/csrc/Generator.cpp).
    "torch._C": ("Generator",),
}

NUMPY: Final[dict[str, tuple[str, ...]]] = {
    "numpy": ("dtype", "ndarray", "matrix", "record", "recarray"),
    "numpy.core.multiarray": ("_reconstruct", "scalar"),
    "numpy._core.multiarray": ("_reconstruct", "scalar"),
    # protocol-5 pickles of contiguous arrays
    "numpy.core.numeric": ("_frombuffer",),
    "numpy._core.numeric": ("_frombuffer",),
    "numpy.core": ("_DType_reconstruct",),
    "numpy._core": ("_DType_reconstruct",),
    "numpy.rec": ("recarray", "record"),
    "numpy.core.records": ("recarray", "record"),
    "numpy._core.records": ("recarray", "record"),
    "numpy.ma": ("MaskedArray",),
    "numpy.ma.core": ("MaskedArray", "_mareconstruct", "MaskedConstant"),
    "numpy.dtypes": (
        "BoolDType", "BytesDType", "CLongDoubleDType", "Complex128DType", "Complex64DType",
        "DateTime64DType", "Float16DType", "Float32DType", "Float64DType", "Int16DType",
        "Int32DType", "Int64DType", "Int8DType", "LongDoubleDType", "ObjectDType", "StrDType",
        "StringDType", "TimeDelta64DType", "UInt16DType", "UInt32DType", "UInt64DType",
        "UInt8DType", "VoidDType",
    ),
    # RandomState / Generator (estimators keep them as random_state). The bit generator
    # is looked up by name in a fixed table or checked to be a BitGenerator subclass.
    "numpy.random._pickle": ("__bit_generator_ctor", "__generator_ctor", "__randomstate_ctor"),
    "numpy.random.mtrand": ("RandomState",),
    "numpy.random._generator": ("Generator",),
    "numpy.random._mt19937": ("MT19937",),
    "numpy.random._pcg64": ("PCG64", "PCG64DXSM"),
    "numpy.random._philox": ("Philox",),
    "numpy.random._sfc64": ("SFC64",),
    "numpy.random.bit_generator": ("SeedSequence", "__pyx_unpickle_SeedSequence"),
}

# ufuncs and scalar types: pickled by name when an estimator keeps them as parameters.
NUMPY_UFUNCS: Final[tuple[str, ...]] = (
    "abs", "absolute", "acos", "acosh", "add", "arccos", "arccosh", "arcsin", "arcsinh", "arctan",
    "arctan2", "arctanh", "asin", "asinh", "atan", "atan2", "atanh", "bitwise_and", "bitwise_count",
    "bitwise_invert", "bitwise_left_shift", "bitwise_not", "bitwise_or", "bitwise_right_shift",
    "bitwise_xor", "cbrt", "ceil", "conj", "conjugate", "copysign", "cos", "cosh", "deg2rad",
    "degrees", "divide", "divmod", "equal", "exp", "exp2", "expm1", "fabs", "float_power", "floor",
    "floor_divide", "fmax", "fmin", "fmod", "frexp", "gcd", "greater", "greater_equal", "heaviside",
    "hypot", "invert", "isfinite", "isinf", "isnan", "isnat", "lcm", "ldexp", "left_shift", "less",
    "less_equal", "log", "log10", "log1p", "log2", "logaddexp", "logaddexp2", "logical_and",
    "logical_not", "logical_or", "logical_xor", "matmul", "matvec", "maximum", "minimum", "mod",
    "modf", "multiply", "negative", "nextafter", "not_equal", "positive", "pow", "power", "rad2deg",
    "radians", "reciprocal", "remainder", "right_shift", "rint", "sign", "signbit", "sin", "sinh",
    "spacing", "sqrt", "square", "subtract", "tan", "tanh", "true_divide", "trunc", "vecdot",
    "vecmat",
    # common non-ufunc reductions used as aggregation parameters
    "mean", "median", "nanmean", "nanmedian", "sum", "nansum", "std", "var", "amax", "amin",
    "max", "min", "prod", "clip", "round", "asarray", "array",
)
NUMPY_SCALARS: Final[tuple[str, ...]] = (
    "bool", "bool_", "byte", "bytes_", "cdouble", "character", "clongdouble", "complex128",
    "complex256", "complex64", "complexfloating", "csingle", "datetime64", "double", "flexible",
    "float128", "float16", "float32", "float64", "floating", "generic", "half", "inexact", "int16",
    "int32", "int64", "int8", "int_", "intc", "integer", "intp", "long", "longdouble", "longlong",
    "number", "object_", "record", "short", "signedinteger", "single", "str_", "timedelta64",
    "ubyte", "uint", "uint16", "uint32", "uint64", "uint8", "uintc", "uintp", "ulong", "ulonglong",
    "unsignedinteger", "ushort", "void",
)

# PyTorch modules, optimizers and schedulers (generated from torch 2.13.0).
TORCH_NN: Final[dict[str, tuple[str, ...]]] = {
    "torch.nn.functional": (
        "celu", "dropout", "elu", "gelu", "glu", "hardshrink", "hardsigmoid", "hardswish",
        "hardtanh", "layer_norm", "leaky_relu", "log_softmax", "logsigmoid", "mish", "normalize",
        "prelu", "relu", "relu6", "rrelu", "selu", "sigmoid", "silu", "softmax", "softplus",
        "softshrink", "softsign", "tanh", "tanhshrink", "threshold"
    ),
    "torch.nn.modules.activation": (
        "CELU", "ELU", "GELU", "GLU", "Hardshrink", "Hardsigmoid", "Hardswish", "Hardtanh",
        "LeakyReLU", "LogSigmoid", "LogSoftmax", "Mish", "MultiheadAttention", "PReLU", "RReLU",
        "ReLU", "ReLU6", "SELU", "SiLU", "Sigmoid", "Softmax", "Softmax2d", "Softmin", "Softplus",
        "Softshrink", "Softsign", "Tanh", "Tanhshrink", "Threshold"
    ),
    "torch.nn.modules.adaptive": ("AdaptiveLogSoftmaxWithLoss",),
    "torch.nn.modules.batchnorm": (
        "BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "LazyBatchNorm1d", "LazyBatchNorm2d",
        "LazyBatchNorm3d", "SyncBatchNorm", "_BatchNorm", "_LazyNormBase", "_NormBase"
    ),
    "torch.nn.modules.channelshuffle": ("ChannelShuffle",),
    "torch.nn.modules.container": (
        "Container", "ModuleDict", "ModuleList", "ParameterDict", "ParameterList", "Sequential"
    ),
    "torch.nn.modules.conv": (
        "Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d",
        "LazyConv1d", "LazyConv2d", "LazyConv3d", "LazyConvTranspose1d", "LazyConvTranspose2d",
        "LazyConvTranspose3d", "_ConvNd", "_ConvTransposeMixin", "_ConvTransposeNd"
    ),
    "torch.nn.modules.distance": ("CosineSimilarity", "PairwiseDistance",),
    "torch.nn.modules.dropout": (
        "AlphaDropout", "Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "FeatureAlphaDropout",
        "_DropoutNd"
    ),
    "torch.nn.modules.flatten": ("Flatten", "Unflatten",),
    "torch.nn.modules.fold": ("Fold", "Unfold",),
    "torch.nn.modules.instancenorm": (
        "InstanceNorm1d", "InstanceNorm2d", "InstanceNorm3d", "LazyInstanceNorm1d",
        "LazyInstanceNorm2d", "LazyInstanceNorm3d", "_InstanceNorm"
    ),
    "torch.nn.modules.linear": (
        "Bilinear", "Identity", "LazyLinear", "Linear", "NonDynamicallyQuantizableLinear"
    ),
    "torch.nn.modules.loss": (
        "BCELoss", "BCEWithLogitsLoss", "CTCLoss", "CosineEmbeddingLoss", "CrossEntropyLoss",
        "GaussianNLLLoss", "HingeEmbeddingLoss", "HuberLoss", "KLDivLoss", "L1Loss",
        "LinearCrossEntropyLoss", "MSELoss", "MarginRankingLoss", "MultiLabelMarginLoss",
        "MultiLabelSoftMarginLoss", "MultiMarginLoss", "NLLLoss", "NLLLoss2d", "PoissonNLLLoss",
        "SmoothL1Loss", "SoftMarginLoss", "TripletMarginLoss", "TripletMarginWithDistanceLoss",
        "_Loss", "_WeightedLoss"
    ),
    "torch.nn.modules.module": ("Module",),
    "torch.nn.modules.normalization": (
        "CrossMapLRN2d", "GroupNorm", "LayerNorm", "LocalResponseNorm", "RMSNorm"
    ),
    "torch.nn.modules.padding": (
        "CircularPad1d", "CircularPad2d", "CircularPad3d", "ConstantPad1d", "ConstantPad2d",
        "ConstantPad3d", "ReflectionPad1d", "ReflectionPad2d", "ReflectionPad3d",
        "ReplicationPad1d", "ReplicationPad2d", "ReplicationPad3d", "ZeroPad1d", "ZeroPad2d",
        "ZeroPad3d", "_CircularPadNd", "_ConstantPadNd", "_ReflectionPadNd", "_ReplicationPadNd"
    ),
    "torch.nn.modules.pixelshuffle": ("PixelShuffle", "PixelUnshuffle",),
    "torch.nn.modules.pooling": (
        "AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AdaptiveAvgPool3d", "AdaptiveMaxPool1d",
        "AdaptiveMaxPool2d", "AdaptiveMaxPool3d", "AvgPool1d", "AvgPool2d", "AvgPool3d",
        "FractionalMaxPool2d", "FractionalMaxPool3d", "LPPool1d", "LPPool2d", "LPPool3d",
        "MaxPool1d", "MaxPool2d", "MaxPool3d", "MaxUnpool1d", "MaxUnpool2d", "MaxUnpool3d",
        "_AdaptiveAvgPoolNd", "_AdaptiveMaxPoolNd", "_AvgPoolNd", "_LPPoolNd", "_MaxPoolNd",
        "_MaxUnpoolNd"
    ),
    "torch.nn.modules.rnn": (
        "GRU", "GRUCell", "LSTM", "LSTMCell", "RNN", "RNNBase", "RNNCell", "RNNCellBase"
    ),
    "torch.nn.modules.sparse": ("Embedding", "EmbeddingBag",),
    "torch.nn.modules.transformer": (
        "Transformer", "TransformerDecoder", "TransformerDecoderLayer", "TransformerEncoder",
        "TransformerEncoderLayer"
    ),
    "torch.nn.modules.upsampling": ("Upsample", "UpsamplingBilinear2d", "UpsamplingNearest2d",),
    "torch.nn.parameter": ("Buffer", "Parameter", "UninitializedBuffer", "UninitializedParameter",),
    "torch.nn.utils.parametrize": ("ParametrizationList",),
    "torch.nn.utils.spectral_norm": (
        "SpectralNorm", "SpectralNormLoadStateDictPreHook", "SpectralNormStateDictHook"
    ),
    "torch.nn.utils.weight_norm": ("WeightNorm",),
    "torch.optim": ("Adafactor", "Muon",),
    "torch.optim.adadelta": ("Adadelta",),
    "torch.optim.adagrad": ("Adagrad",),
    "torch.optim.adam": ("Adam",),
    "torch.optim.adamax": ("Adamax",),
    "torch.optim.adamw": ("AdamW",),
    "torch.optim.asgd": ("ASGD",),
    "torch.optim.lbfgs": ("LBFGS",),
    "torch.optim.lr_scheduler": (
        "ChainedScheduler", "ConstantLR", "CosineAnnealingLR", "CosineAnnealingWarmRestarts",
        "CyclicLR", "ExponentialLR", "LRScheduler", "LambdaLR", "LinearLR", "MultiStepLR",
        "MultiplicativeLR", "OneCycleLR", "PolynomialLR", "ReduceLROnPlateau", "SequentialLR",
        "StepLR", "_LRScheduler", "_SchedulePhase", "_enable_get_lr_call", "_initial_mode"
    ),
    "torch.optim.nadam": ("NAdam",),
    "torch.optim.optimizer": ("Optimizer", "_RequiredParameter",),
    "torch.optim.radam": ("RAdam",),
    "torch.optim.rmsprop": ("RMSprop",),
    "torch.optim.rprop": ("Rprop",),
    "torch.optim.sgd": ("SGD",),
    "torch.optim.sparse_adam": ("SparseAdam",),
}

# torch.distributions objects pickle as ``cls.__new__(cls)`` plus a ``__dict__`` of tensors
# and sizes: no class in torch/distributions defines ``__setstate__`` or ``__reduce__``
# (checked for torch 2.13.0), so loading one runs no code of theirs.
TORCH_DISTRIBUTIONS: Final[dict[str, tuple[str, ...]]] = {
    "torch.distributions.bernoulli": ("Bernoulli",),
    "torch.distributions.beta": ("Beta",),
    "torch.distributions.categorical": ("Categorical",),
    "torch.distributions.dirichlet": ("Dirichlet",),
    "torch.distributions.exponential": ("Exponential",),
    "torch.distributions.gamma": ("Gamma",),
    "torch.distributions.independent": ("Independent",),
    "torch.distributions.laplace": ("Laplace",),
    "torch.distributions.log_normal": ("LogNormal",),
    "torch.distributions.multivariate_normal": ("MultivariateNormal",),
    "torch.distributions.normal": ("Normal",),
    "torch.distributions.one_hot_categorical": ("OneHotCategorical",),
    "torch.distributions.poisson": ("Poisson",),
    "torch.distributions.transformed_distribution": ("TransformedDistribution",),
    "torch.distributions.transforms": (
        "AffineTransform", "ExpTransform", "SigmoidTransform", "TanhTransform",
    ),
    "torch.distributions.uniform": ("Uniform",),
}

# Libraries built on the same pattern: estimator classes and their boosters.
OTHERS: Final[dict[str, tuple[str, ...]]] = {
    "xgboost.core": ("Booster",),
    "xgboost.sklearn": (
        "XGBClassifier", "XGBModel", "XGBRFClassifier", "XGBRFRegressor", "XGBRanker",
        "XGBRegressor",
    ),
    "lightgbm.basic": ("Booster",),
    "lightgbm.sklearn": ("LGBMClassifier", "LGBMModel", "LGBMRanker", "LGBMRegressor"),
    # joblib's array placeholder; the array bytes that follow it are analysed by the
    # joblib handling, not by calling anything.
    "joblib.numpy_pickle": ("NumpyArrayWrapper",),
    "scipy.sparse._csr": ("csr_matrix", "csr_array"),
    "scipy.sparse._csc": ("csc_matrix", "csc_array"),
    "scipy.sparse._coo": ("coo_matrix", "coo_array"),
    "scipy.sparse._lil": ("lil_matrix", "lil_array"),
    "scipy.sparse._dok": ("dok_matrix", "dok_array"),
    "scipy.sparse._dia": ("dia_matrix", "dia_array"),
    "scipy.sparse._bsr": ("bsr_matrix", "bsr_array"),
    "scipy.interpolate._bsplines": ("BSpline",),
    "scipy._lib.array_api_compat.numpy._aliases": ("asarray",),
    # Hugging Face training checkpoints (training_args.bin is torch.save of these).
    "transformers.training_args": ("TrainingArguments", "OptimizerNames"),
    "transformers.training_args_seq2seq": ("Seq2SeqTrainingArguments",),
    "transformers.trainer_utils": (
        "EvalPrediction", "HubStrategy", "IntervalStrategy", "SaveStrategy", "SchedulerType",
        "FSDPOption",
    ),
    "transformers.trainer_callback": ("TrainerState", "TrainerControl"),
    "transformers.debug_utils": ("DebugOption",),
    "transformers.tokenization_utils_base": ("BatchEncoding", "TruncationStrategy"),
    "transformers.utils.generic": ("PaddingStrategy", "TensorType", "ExplicitEnum"),
    "transformers.trainer_pt_utils": ("AcceleratorConfig",),
    "accelerate.utils.dataclasses": ("DistributedType",),
    "tokenizers": ("AddedToken",),
}


def _flatten(*tables: dict[str, tuple[str, ...]]) -> frozenset[str]:
    return frozenset(f"{module}.{name}" for table in tables for module, names in table.items()
                     for name in names)


# TorchScript archives' pickles (constants.pkl, .debug_pkl): identity helpers the
# TorchScript unpickler handles natively (torch/jit/_pickle.py); exempted in the catalogue.
TORCHSCRIPT: Final[dict[str, tuple[str, ...]]] = {
    "torch.jit._pickle": (
        "build_intlist", "build_tensorlist", "build_doublelist", "build_boollist",
        "build_tensor_from_id", "restore_type_tag",
    ),
}

SAFE_GLOBALS: Final[frozenset[str]] = (
    _flatten(STDLIB, TORCH_CORE, NUMPY, SKLEARN, TORCH_NN, TORCH_DISTRIBUTIONS, OTHERS,
             TORCHSCRIPT)
    | frozenset(f"numpy.{name}" for name in (*NUMPY_UFUNCS, *NUMPY_SCALARS))
)

# Allowlisted *functions* that benign pickles only ever store as a reference (an estimator's
# ``score_func``, ``FunctionTransformer(func=np.log1p)``, an activation kept on a module,
# BisectingKMeans' ``_kmeans_single``): no library's ``__reduce__`` calls them while loading.
# A pickle that calls one runs library code on data from the file: many of them are
# unchecked native loops (``_kmeans_single_lloyd`` with arrays of mismatched shapes writes
# out of bounds and corrupts the heap), so such a call is reported, not trusted.
REFERENCE_ONLY: Final[frozenset[str]] = frozenset(
    {f"numpy.{name}" for name in NUMPY_UFUNCS}
    | {f"torch.nn.functional.{name}" for name in TORCH_NN["torch.nn.functional"]}
    | {
        "sklearn.cluster._kmeans._kmeans_single_lloyd",
        "sklearn.feature_selection._mutual_info.mutual_info_classif",
        "sklearn.feature_selection._mutual_info.mutual_info_regression",
        "sklearn.feature_selection._univariate_selection.chi2",
        "sklearn.feature_selection._univariate_selection.f_classif",
        "sklearn.feature_selection._univariate_selection.f_regression",
        "sklearn.feature_selection._univariate_selection.r_regression",
        "sklearn.metrics._classification.balanced_accuracy_score",
        "scipy._lib.array_api_compat.numpy._aliases.asarray",
    }
)

# Safe callables that call the argument at a given position while loading (numpy's
# RandomState / Generator pickling helpers call ``bit_generator_ctor(name)``, and
# ``__bit_generator_ctor(cls)`` calls ``cls()``). What sits there must be a plain import:
# anything computed is a call the machine cannot see.
CALLED_POSITIONS: Final[dict[str, tuple[int, ...]]] = {
    "numpy.random._pickle.__randomstate_ctor": (1,),
    "numpy.random._pickle.__generator_ctor": (1,),
    "numpy.random._pickle.__bit_generator_ctor": (0,),
}

# Safe callables that call something they are given while loading, so the pickle machine
# must treat what flows into them as called (a non-imported callee there is suspicious).
CALLS_ARGUMENTS: Final[frozenset[str]] = frozenset({
    "copyreg._reconstructor",
    "copyreg.__newobj__",
    "copyreg.__newobj_ex__",
    "torch._tensor._rebuild_from_type_v2",
    "sklearn.neighbors._ball_tree.newObj",
    "sklearn.neighbors._kd_tree.newObj",
    "sklearn.metrics._dist_metrics.newObj",
})
