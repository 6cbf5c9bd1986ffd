"""TensorFlow op names: the standard set, and those that reach files, processes or networks.

`STANDARD_OPS` is an allowlist of op names registered by core TensorFlow that inference
and training graphs commonly use. It is curated by hand from the op registry
(``tensorflow/core/api_def/base_api/api_def_<Op>.pbtxt`` and
``tensorflow/tools/api/golden/v1/tensorflow.raw_ops.pbtxt`` in tensorflow/tensorflow),
not generated: TensorFlow is not installed here. It is deliberately a subset (about 600 of
~1700 ops): an op outside it is reported MEDIUM ("cannot be verified"), which is the
allowlist stance, not proof of a custom kernel. Extend it when a real model trips it.

The dangerous tables say which ops touch the outside world and how (see
`tensorflow.py` for the severity rules).
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "ATTR_PATH_OPS", "FILE_OPS", "NETWORK_OPS", "PATH_INPUT_OPS", "PYTHON_OPS", "STANDARD_OPS",
]

STANDARD_OPS: Final[frozenset[str]] = frozenset({
    "Abs", "Acos", "Acosh", "Add", "AddN", "AddV2", "AdjustContrastv2", "AdjustHue",
    "AdjustSaturation", "All", "Angle", "AnonymousIteratorV3", "Any", "ApplyAdam",
    "ApplyGradientDescent", "ApplyMomentum", "ApplyRMSProp", "ApproximateEqual", "ArgMax",
    "ArgMin", "AsString", "Asin", "Asinh", "Assert", "Assign", "AssignAdd",
    "AssignAddVariableOp", "AssignSub", "AssignSubVariableOp", "AssignVariableOp", "Atan",
    "Atan2", "Atanh", "AudioSummaryV2", "AvgPool", "AvgPool3D", "AvgPoolGrad", "BatchDatasetV2",
    "BatchMatMul", "BatchMatMulV2", "BatchMatMulV3", "BatchNormWithGlobalNormalization",
    "BatchToSpace", "BatchToSpaceND", "BesselI0e", "BesselI1e", "Betainc", "BiasAdd",
    "BiasAddGrad", "BiasAddV1", "Bincount", "Bitcast", "BitwiseAnd", "BitwiseOr", "BitwiseXor",
    "BroadcastArgs", "BroadcastGradientArgs", "BroadcastTo", "Bucketize", "CSVDataset",
    "CSVDatasetV2", "CacheDatasetV2", "Cast", "Ceil", "CheckNumerics", "CheckNumericsV2",
    "Cholesky", "ClipByValue", "CombinedNonMaxSuppression", "Complex", "ComplexAbs", "Concat",
    "ConcatOffset", "ConcatV2", "Conj", "ConjugateTranspose", "Const", "ControlTrigger", "Conv",
    "Conv2D", "Conv2DBackpropFilter", "Conv2DBackpropInput", "Conv3D", "Conv3DBackpropFilterV2",
    "Conv3DBackpropInputV2", "Cos", "Cosh", "CropAndResize", "Cross", "Cumprod", "Cumsum",
    "CumulativeLogsumexp", "DataFormatDimMap", "DataFormatVecPermute", "DatasetCardinality",
    "DebugIdentity", "DebugIdentityV2", "DebugIdentityV3", "DebugNanCount",
    "DebugNumericSummary", "DebugNumericSummaryV2", "DecodeBase64", "DecodeBmp", "DecodeCSV",
    "DecodeCompressed", "DecodeGif", "DecodeImage", "DecodeJpeg", "DecodePng", "DecodeProtoV2",
    "DecodeRaw", "DecodeWav", "DeleteIterator", "DeleteSessionTensor", "DenseBincount",
    "DenseToDenseSetOperation", "DepthToSpace", "DepthwiseConv2dNative",
    "DepthwiseConv2dNativeBackpropFilter", "DepthwiseConv2dNativeBackpropInput", "Dequantize",
    "DestroyResourceOp", "DeviceIndex", "Diag", "DiagPart", "Digamma", "Dilation2D",
    "DisableCopyOnRead", "Div", "DivNoNan", "DrawBoundingBoxes", "DrawBoundingBoxesV2",
    "DynamicPartition", "DynamicStitch", "EditDistance", "Einsum", "Elu", "EluGrad", "Empty",
    "EmptyTensorList", "EncodeBase64", "EncodeJpeg", "EncodePng", "EncodeProto", "EncodeWav",
    "EnsureShape", "Enter", "Equal", "Erf", "Erfc", "Erfinv", "EuclideanNorm", "Exit", "Exp",
    "ExpandDims", "ExperimentalStatsAggregateHandle", "Expm1", "ExtractGlimpse",
    "ExtractImagePatches", "ExtractJpegShape", "FFT", "FFT2D", "FFT3D", "FakeParam",
    "FakeQuantWithMinMaxArgs", "FakeQuantWithMinMaxVars", "FakeQuantWithMinMaxVarsPerChannel",
    "Fill", "FilterDataset", "Fingerprint", "FixedLengthRecordDataset",
    "FixedLengthRecordDatasetV2", "FlatMapDataset", "Floor", "FloorDiv", "FloorMod",
    "FusedBatchNorm", "FusedBatchNormGrad", "FusedBatchNormGradV3", "FusedBatchNormV2",
    "FusedBatchNormV3", "FusedPadConv2D", "FusedResizeAndPadConv2D", "Gather", "GatherNd",
    "GatherV2", "GenerateVocabRemapping", "GetSessionHandle", "GetSessionHandleV2",
    "GetSessionTensor", "Greater", "GreaterEqual", "GuaranteeConst", "HSVToRGB", "HashTable",
    "HashTableV2", "HistogramFixedWidth", "HistogramSummary", "IFFT", "IFFT2D", "IFFT3D",
    "IRFFT", "Identity", "IdentityN", "If", "Igamma", "Igammac", "Imag", "ImageSummary",
    "InTopK", "InTopKV2", "InitializeTable", "InitializeTableFromTextFile",
    "InitializeTableFromTextFileV2", "InitializeTableV2", "InplaceAdd", "InplaceSub",
    "InplaceUpdate", "Inv", "InvGrad", "Invert", "InvertPermutation", "IsFinite", "IsInf",
    "IsNan", "IsVariableInitialized", "Iterator", "IteratorGetNext", "IteratorGetNextSync",
    "IteratorToStringHandle", "IteratorV2", "L2Loss", "LRN", "LeakyRelu", "LeakyReluGrad",
    "LeftShift", "Less", "LessEqual", "Lgamma", "LinSpace", "ListDiff", "LoadAndRemapMatrix",
    "Log", "Log1p", "LogSoftmax", "LogicalAnd", "LogicalNot", "LogicalOr", "LookupTableExport",
    "LookupTableExportV2", "LookupTableFind", "LookupTableFindV2", "LookupTableImport",
    "LookupTableImportV2", "LookupTableInsert", "LookupTableInsertV2", "LookupTableSize",
    "LookupTableSizeV2", "LoopCond", "LowerBound", "MakeIterator", "MapDataset", "MatMul",
    "MatrixBandPart", "MatrixDeterminant", "MatrixDiag", "MatrixDiagPart", "MatrixDiagPartV2",
    "MatrixDiagPartV3", "MatrixDiagV2", "MatrixDiagV3", "MatrixInverse", "MatrixSetDiag",
    "MatrixSetDiagV2", "MatrixSetDiagV3", "MatrixSolve", "MatrixSquareRoot",
    "MatrixTriangularSolve", "Max", "MaxPool", "MaxPool3D", "MaxPoolGrad", "MaxPoolV2",
    "MaxPoolWithArgmax", "Maximum", "Mean", "Merge", "MergeSummary", "MergeV2Checkpoints",
    "Min", "Minimum", "MirrorPad", "MirrorPadGrad", "Mod", "ModelDataset", "Mul", "MulNoNan",
    "Multinomial", "MutableDenseHashTable", "MutableDenseHashTableV2", "MutableHashTable",
    "MutableHashTableOfTensors", "MutableHashTableOfTensorsV2", "MutableHashTableV2", "Ndtri",
    "Neg", "NextIteration", "NoOp", "NonMaxSuppression", "NonMaxSuppressionV2",
    "NonMaxSuppressionV3", "NonMaxSuppressionV4", "NonMaxSuppressionV5",
    "NonMaxSuppressionWithOverlaps", "NotEqual", "NthElement", "OneHot", "OnesLike",
    "OptimizeDatasetV2", "OptionalFromValue", "OptionalGetValue", "OptionalHasValue",
    "OptionalNone", "Pack", "Pad", "PadV2", "ParallelConcat", "ParallelDynamicStitch",
    "ParallelMapDatasetV2", "ParameterizedTruncatedNormal", "PartitionedCall", "Placeholder",
    "PlaceholderV2", "PlaceholderWithDefault", "Polygamma", "PopulationCount", "Pow",
    "PrefetchDataset", "PreventGradient", "Print", "PrintV2", "Prod", "Qr",
    "QuantizeAndDequantize", "QuantizeAndDequantizeV2", "QuantizeAndDequantizeV3",
    "QuantizeAndDequantizeV4", "QuantizeV2", "QuantizedAdd", "QuantizedAvgPool",
    "QuantizedBiasAdd", "QuantizedConcat", "QuantizedConv2D", "QuantizedMatMul",
    "QuantizedMaxPool", "QuantizedMul", "QuantizedRelu", "QuantizedRelu6", "QuantizedReshape",
    "QuantizedResizeBilinear", "RFFT", "RFFT2D", "RFFT3D", "RGBToHSV", "RaggedGather",
    "RaggedRange", "RaggedTensorFromVariant", "RaggedTensorToSparse", "RaggedTensorToTensor",
    "RaggedTensorToVariant", "RandomGamma", "RandomPoisson", "RandomPoissonV2", "RandomShuffle",
    "RandomStandardNormal", "RandomUniform", "RandomUniformInt", "Range", "RangeDataset",
    "Rank", "ReadVariableOp", "Real", "RealDiv", "Reciprocal", "ReciprocalGrad", "RefEnter",
    "RefExit", "RefIdentity", "RefMerge", "RefNextIteration", "RefSwitch", "RegexFullMatch",
    "RegexReplace", "Relu", "Relu6", "Relu6Grad", "ReluGrad", "RepeatDataset", "Reshape",
    "ResizeArea", "ResizeBicubic", "ResizeBilinear", "ResizeBilinearGrad",
    "ResizeNearestNeighbor", "ResizeNearestNeighborGrad", "ResourceApplyAdaMax",
    "ResourceApplyAdadelta", "ResourceApplyAdagradV2", "ResourceApplyAdam",
    "ResourceApplyCenteredRMSProp", "ResourceApplyFtrl", "ResourceApplyFtrlV2",
    "ResourceApplyGradientDescent", "ResourceApplyKerasMomentum", "ResourceApplyMomentum",
    "ResourceApplyRMSProp", "ResourceGather", "ResourceGatherNd", "ResourceScatterAdd",
    "ResourceScatterUpdate", "ResourceStridedSliceAssign", "Restore", "RestoreSlice",
    "RestoreV2", "Reverse", "ReverseSequence", "ReverseV2", "RightShift", "Rint", "Roll",
    "Round", "Rsqrt", "RsqrtGrad", "SampleDistortedBoundingBox", "SampleDistortedBoundingBoxV2",
    "Save", "SaveSlices", "SaveV2", "ScalarSummary", "ScatterAdd", "ScatterNd", "ScatterNdAdd",
    "ScatterNdUpdate", "ScatterUpdate", "SegmentMax", "SegmentMean", "SegmentMin",
    "SegmentProd", "SegmentSum", "Select", "SelectV2", "Selu", "SeluGrad", "Shape", "ShapeN",
    "ShardedFilename", "ShardedFilespec", "ShuffleDatasetV3", "Sigmoid", "SigmoidGrad", "Sign",
    "Sin", "Sinh", "Size", "Slice", "Snapshot", "SnapshotDatasetV2", "Softmax",
    "SoftmaxCrossEntropyWithLogits", "Softplus", "SoftplusGrad", "Softsign", "SpaceToBatch",
    "SpaceToBatchND", "SpaceToDepth", "SparseFillEmptyRows", "SparseReshape",
    "SparseSegmentMean", "SparseSegmentSqrtN", "SparseSegmentSum", "SparseSlice",
    "SparseSoftmaxCrossEntropyWithLogits", "SparseTensorDenseMatMul", "SparseToDense", "Split",
    "SplitV", "Sqrt", "SqrtGrad", "Square", "SquaredDifference", "Squeeze", "Stack",
    "StackPopV2", "StackPushV2", "StackV2", "StatefulPartitionedCall",
    "StatefulStandardNormalV2", "StatefulUniform", "StatelessIf", "StatelessMultinomial",
    "StatelessRandomGetKeyCounter", "StatelessRandomNormal", "StatelessRandomNormalV2",
    "StatelessRandomUniform", "StatelessRandomUniformInt", "StatelessRandomUniformV2",
    "StatelessTruncatedNormal", "StatelessTruncatedNormalV2", "StatelessWhile",
    "StaticRegexFullMatch", "StaticRegexReplace", "StopGradient", "StridedSlice",
    "StridedSliceAssign", "StridedSliceGrad", "StringFormat", "StringJoin", "StringLength",
    "StringLower", "StringSplit", "StringSplitV2", "StringStrip", "StringToHashBucket",
    "StringToHashBucketFast", "StringToHashBucketStrong", "StringToNumber", "StringUpper",
    "Sub", "Substr", "Sum", "Svd", "Switch", "SymbolicGradient", "TFRecordDataset",
    "TFRecordDatasetV2", "TakeDataset", "Tan", "Tanh", "TanhGrad", "TensorArrayGatherV3",
    "TensorArrayReadV3", "TensorArrayScatterV3", "TensorArraySizeV3", "TensorArrayV3",
    "TensorArrayWriteV3", "TensorDataset", "TensorListConcatV2", "TensorListElementShape",
    "TensorListFromTensor", "TensorListGetItem", "TensorListLength", "TensorListPopBack",
    "TensorListPushBack", "TensorListReserve", "TensorListResize", "TensorListSetItem",
    "TensorListStack", "TensorScatterAdd", "TensorScatterUpdate", "TensorSliceDataset",
    "TensorSummary", "TensorSummaryV2", "TextLineDataset", "Tile", "TopK", "TopKV2",
    "Transpose", "TruncateDiv", "TruncateMod", "TruncatedNormal", "Unique", "UniqueV2",
    "UniqueWithCounts", "Unpack", "UnravelIndex", "UnsortedSegmentMax", "UnsortedSegmentMin",
    "UnsortedSegmentProd", "UnsortedSegmentSum", "UpperBound", "VarHandleOp",
    "VarIsInitializedOp", "Variable", "VariableShape", "VariableV2", "Where", "While",
    "WriteScalarSummary", "Xdivy", "Xlog1py", "Xlogy", "ZerosLike", "Zeta", "ZipDataset",
    "_Arg", "_DeviceArg", "_DeviceRetval", "_FusedBatchNormEx", "_FusedConv2D",
    "_FusedDepthwiseConv2dNative", "_FusedMatMul", "_If", "_ReadVariablesOp", "_Retval",
    "_While",
})

#: Ops that call back into Python functions of the loading process.
PYTHON_OPS: Final[frozenset[str]] = frozenset({"PyFunc", "PyFuncStateless", "EagerPyFunc"})

#: Ops that read, write, list or map files whatever their inputs.
FILE_OPS: Final[frozenset[str]] = frozenset({
    "ReadFile", "WriteFile", "MatchingFiles", "MatchingFilesDataset",
    "ExperimentalMatchingFilesDataset", "WholeFileReader", "WholeFileReaderV2",
    "ImmutableConst", "SaveDataset", "SaveDatasetV2", "LoadDataset", "DatasetToTFRecord",
    "ExperimentalDatasetToTFRecord", "CreateSummaryFileWriter", "CreateSummaryDbWriter",
    "WriteSummary", "WriteRawProtoSummary", "WriteGraphSummary", "WriteHistogramSummary",
    "WriteImageSummary", "WriteAudioSummary", "WriteScalarSummary", "FlushSummaryWriter",
    "ImportEvent", "TFRecordReader", "TFRecordReaderV2", "TextLineReader", "TextLineReaderV2",
    "FixedLengthRecordReader", "FixedLengthRecordReaderV2", "LMDBReader", "LMDBDataset",
    "ExperimentalLMDBDataset", "SqlDataset", "ExperimentalSqlDataset",
    "SnapshotDataset", "DistributedSave",
})

#: Ops that talk to other machines or configure cloud credentials.
NETWORK_OPS: Final[frozenset[str]] = frozenset({
    "Rpc", "TryRpc", "RpcCall", "RpcClient", "RpcServer", "RpcServerStart",
    "RpcServerRegister", "RpcCheckStatus", "RpcGetValue", "DeleteRpcFutureResource",
    "GcsConfigureBlockCache", "GcsConfigureCredentials", "BigQueryReader",
    "GenerateBigQueryReaderPartitions", "DataServiceDataset", "DataServiceDatasetV2",
    "DataServiceDatasetV3", "DataServiceDatasetV4", "RegisterDataset", "RegisterDatasetV2",
    "KafkaDataset", "CollectiveBcastSend", "CollectiveBcastRecv",
})

#: Standard ops whose input at this index is a file path: constant paths are reported.
PATH_INPUT_OPS: Final[dict[str, int]] = {
    "Save": 0, "SaveV2": 0, "SaveSlices": 0, "Restore": 0, "RestoreV2": 0, "RestoreSlice": 0,
    "MergeV2Checkpoints": 1, "LoadAndRemapMatrix": 0, "InitializeTableFromTextFile": 1,
    "InitializeTableFromTextFileV2": 1, "TFRecordDataset": 0, "TFRecordDatasetV2": 0,
    "TextLineDataset": 0, "FixedLengthRecordDataset": 0, "FixedLengthRecordDatasetV2": 0,
    "CSVDataset": 0, "CSVDatasetV2": 0, "SnapshotDatasetV2": 1,
}

#: Standard ops whose string attribute names a file or URL: (attribute, safe prefixes).
ATTR_PATH_OPS: Final[dict[str, tuple[str, tuple[str, ...]]]] = {
    "DebugIdentity": ("debug_urls", ()), "DebugIdentityV2": ("debug_urls", ()),
    "DebugIdentityV3": ("debug_urls", ()), "DebugNanCount": ("debug_urls", ()),
    "DebugNumericSummary": ("debug_urls", ()), "DebugNumericSummaryV2": ("debug_urls", ()),
    "PrintV2": ("output_stream", ("stderr", "stdout", "log(info)", "log(warning)",
                                  "log(error)")),
    "DecodeProtoV2": ("descriptor_source", ("local://",)),
    "EncodeProto": ("descriptor_source", ("local://",)),
}
