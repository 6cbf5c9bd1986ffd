"""The scikit-learn part of the pickle allowlist, kept apart because it is the largest table.

`allowlist` merges this table into `SAFE_GLOBALS` with the other libraries'; the rules for
what may be listed (exact ``module`` / ``qualname`` pairs, no dataset, testing or externals
module) and how the list was generated are in `modelward.pickle_analysis.allowlist`.
"""

from __future__ import annotations

from typing import Final

__all__ = ["SKLEARN"]

# scikit-learn 1.9 (generated, then reviewed: no dataset, testing or externals module).
SKLEARN: Final[dict[str, tuple[str, ...]]] = {
    "sklearn._loss._loss": (
        "CyAbsoluteError", "CyExponentialLoss", "CyHalfBinomialLoss", "CyHalfGammaLoss",
        "CyHalfMultinomialLoss", "CyHalfPoissonLoss", "CyHalfSquaredError", "CyHalfTweedieLoss",
        "CyHalfTweedieLossIdentity", "CyHuberLoss", "CyPinballLoss"
    ),
    "sklearn._loss.link": ("IdentityLink", "Interval", "LogLink", "LogitLink", "MultinomialLogit",),
    "sklearn._loss.loss": (
        "AbsoluteError", "ExponentialLoss", "HalfBinomialLoss", "HalfGammaLoss",
        "HalfMultinomialLoss", "HalfPoissonLoss", "HalfSquaredError", "HalfTweedieLoss",
        "HalfTweedieLossIdentity", "HuberLoss", "PinballLoss"
    ),
    "sklearn.calibration": (
        "CalibratedClassifierCV", "_CalibratedClassifier", "_SigmoidCalibration"
    ),
    "sklearn.cluster._affinity_propagation": ("AffinityPropagation",),
    "sklearn.cluster._agglomerative": ("AgglomerativeClustering", "FeatureAgglomeration",),
    "sklearn.cluster._bicluster": ("SpectralBiclustering", "SpectralCoclustering",),
    "sklearn.cluster._birch": ("Birch", "_CFNode", "_CFSubcluster",),
    "sklearn.cluster._bisect_k_means": ("BisectingKMeans", "_BisectingTree",),
    "sklearn.cluster._dbscan": ("DBSCAN",),
    "sklearn.cluster._hdbscan.hdbscan": ("HDBSCAN",),
    "sklearn.cluster._kmeans": ("KMeans", "MiniBatchKMeans", "_kmeans_single_lloyd",),
    "sklearn.cluster._mean_shift": ("MeanShift",),
    "sklearn.cluster._optics": ("OPTICS",),
    "sklearn.cluster._spectral": ("SpectralClustering",),
    "sklearn.compose._column_transformer": ("ColumnTransformer",),
    "sklearn.compose._target": ("TransformedTargetRegressor",),
    "sklearn.covariance._elliptic_envelope": ("EllipticEnvelope",),
    "sklearn.covariance._empirical_covariance": ("EmpiricalCovariance",),
    "sklearn.covariance._graph_lasso": ("GraphicalLasso", "GraphicalLassoCV",),
    "sklearn.covariance._robust_covariance": ("MinCovDet",),
    "sklearn.covariance._shrunk_covariance": ("LedoitWolf", "OAS", "ShrunkCovariance",),
    "sklearn.cross_decomposition._pls": ("CCA", "PLSCanonical", "PLSRegression", "PLSSVD",),
    "sklearn.decomposition._dict_learning": (
        "DictionaryLearning", "MiniBatchDictionaryLearning", "SparseCoder"
    ),
    "sklearn.decomposition._factor_analysis": ("FactorAnalysis",),
    "sklearn.decomposition._fastica": ("FastICA",),
    "sklearn.decomposition._incremental_pca": ("IncrementalPCA",),
    "sklearn.decomposition._kernel_pca": ("KernelPCA",),
    "sklearn.decomposition._lda": ("LatentDirichletAllocation",),
    "sklearn.decomposition._nmf": ("MiniBatchNMF", "NMF",),
    "sklearn.decomposition._pca": ("PCA",),
    "sklearn.decomposition._sparse_pca": ("MiniBatchSparsePCA", "SparsePCA",),
    "sklearn.decomposition._truncated_svd": ("TruncatedSVD",),
    "sklearn.discriminant_analysis": (
        "LinearDiscriminantAnalysis", "QuadraticDiscriminantAnalysis"
    ),
    "sklearn.dummy": ("DummyClassifier", "DummyRegressor",),
    "sklearn.ensemble._bagging": ("BaggingClassifier", "BaggingRegressor",),
    "sklearn.ensemble._forest": (
        "ExtraTreesClassifier", "ExtraTreesRegressor", "RandomForestClassifier",
        "RandomForestRegressor", "RandomTreesEmbedding"
    ),
    "sklearn.ensemble._gb": ("GradientBoostingClassifier", "GradientBoostingRegressor",),
    "sklearn.ensemble._hist_gradient_boosting.binning": ("_BinMapper",),
    "sklearn.ensemble._hist_gradient_boosting.common": ("PREDICTOR_RECORD_DTYPE",),
    "sklearn.ensemble._hist_gradient_boosting.gradient_boosting": (
        "HistGradientBoostingClassifier", "HistGradientBoostingRegressor"
    ),
    "sklearn.ensemble._hist_gradient_boosting.predictor": ("TreePredictor",),
    "sklearn.ensemble._iforest": ("IsolationForest",),
    "sklearn.ensemble._stacking": ("StackingClassifier", "StackingRegressor",),
    "sklearn.ensemble._voting": ("VotingClassifier", "VotingRegressor",),
    "sklearn.ensemble._weight_boosting": ("AdaBoostClassifier", "AdaBoostRegressor",),
    "sklearn.feature_extraction._dict_vectorizer": ("DictVectorizer",),
    "sklearn.feature_extraction._hash": ("FeatureHasher",),
    "sklearn.feature_extraction.image": ("PatchExtractor",),
    "sklearn.feature_extraction.text": (
        "CountVectorizer", "HashingVectorizer", "TfidfTransformer", "TfidfVectorizer"
    ),
    "sklearn.feature_selection._from_model": ("SelectFromModel",),
    "sklearn.feature_selection._mutual_info": ("mutual_info_classif", "mutual_info_regression",),
    "sklearn.feature_selection._rfe": ("RFE", "RFECV",),
    "sklearn.feature_selection._sequential": ("SequentialFeatureSelector",),
    "sklearn.feature_selection._univariate_selection": (
        "GenericUnivariateSelect", "SelectFdr", "SelectFpr", "SelectFwe", "SelectKBest",
        "SelectPercentile", "chi2", "f_classif", "f_regression", "r_regression"
    ),
    "sklearn.feature_selection._variance_threshold": ("VarianceThreshold",),
    "sklearn.frozen._frozen": ("FrozenEstimator",),
    "sklearn.gaussian_process._gpc": (
        "GaussianProcessClassifier", "_BinaryGaussianProcessClassifierLaplace"
    ),
    "sklearn.gaussian_process._gpr": ("GaussianProcessRegressor",),
    "sklearn.gaussian_process.kernels": (
        "CompoundKernel", "ConstantKernel", "DotProduct", "ExpSineSquared", "Exponentiation",
        "Hyperparameter", "Matern", "PairwiseKernel", "Product", "RBF", "RationalQuadratic", "Sum",
        "WhiteKernel"
    ),
    "sklearn.impute._base": ("MissingIndicator", "SimpleImputer",),
    "sklearn.impute._knn": ("KNNImputer",),
    "sklearn.isotonic": ("IsotonicRegression",),
    "sklearn.kernel_approximation": (
        "AdditiveChi2Sampler", "Nystroem", "PolynomialCountSketch", "RBFSampler",
        "SkewedChi2Sampler"
    ),
    "sklearn.kernel_ridge": ("KernelRidge",),
    "sklearn.linear_model._base": ("LinearRegression",),
    "sklearn.linear_model._bayes": ("ARDRegression", "BayesianRidge",),
    "sklearn.linear_model._coordinate_descent": (
        "ElasticNet", "ElasticNetCV", "Lasso", "LassoCV", "MultiTaskElasticNet",
        "MultiTaskElasticNetCV", "MultiTaskLasso", "MultiTaskLassoCV"
    ),
    "sklearn.linear_model._glm.glm": ("GammaRegressor", "PoissonRegressor", "TweedieRegressor",),
    "sklearn.linear_model._huber": ("HuberRegressor",),
    "sklearn.linear_model._least_angle": (
        "Lars", "LarsCV", "LassoLars", "LassoLarsCV", "LassoLarsIC"
    ),
    "sklearn.linear_model._logistic": ("LogisticRegression", "LogisticRegressionCV",),
    "sklearn.linear_model._omp": ("OrthogonalMatchingPursuit", "OrthogonalMatchingPursuitCV",),
    "sklearn.linear_model._passive_aggressive": (
        "PassiveAggressiveClassifier", "PassiveAggressiveRegressor"
    ),
    "sklearn.linear_model._perceptron": ("Perceptron",),
    "sklearn.linear_model._quantile": ("QuantileRegressor",),
    "sklearn.linear_model._ransac": ("RANSACRegressor",),
    "sklearn.linear_model._ridge": ("Ridge", "RidgeCV", "RidgeClassifier", "RidgeClassifierCV",),
    "sklearn.linear_model._sgd_fast": (
        "EpsilonInsensitive", "Hinge", "ModifiedHuber", "SquaredEpsilonInsensitive", "SquaredHinge"
    ),
    "sklearn.linear_model._stochastic_gradient": (
        "SGDClassifier", "SGDOneClassSVM", "SGDRegressor"
    ),
    "sklearn.linear_model._theil_sen": ("TheilSenRegressor",),
    "sklearn.manifold._classical_mds": ("ClassicalMDS",),
    "sklearn.manifold._isomap": ("Isomap",),
    "sklearn.manifold._locally_linear": ("LocallyLinearEmbedding",),
    "sklearn.manifold._mds": ("MDS",),
    "sklearn.manifold._spectral_embedding": ("SpectralEmbedding",),
    "sklearn.manifold._t_sne": ("TSNE",),
    "sklearn.metrics._classification": ("balanced_accuracy_score",),
    "sklearn.metrics._dist_metrics": (
        "ChebyshevDistance64", "DistanceMetric64", "EuclideanDistance32", "EuclideanDistance64",
        "HaversineDistance64", "ManhattanDistance64", "MinkowskiDistance64", "newObj"
    ),
    "sklearn.metrics._scorer": (
        "_CurveScorer", "_MultimetricScorer", "_PassthroughScorer", "_Scorer"
    ),
    "sklearn.mixture._bayesian_mixture": ("BayesianGaussianMixture",),
    "sklearn.mixture._gaussian_mixture": ("GaussianMixture",),
    "sklearn.model_selection._classification_threshold": (
        "FixedThresholdClassifier", "TunedThresholdClassifierCV"
    ),
    "sklearn.model_selection._search": ("GridSearchCV", "RandomizedSearchCV",),
    "sklearn.model_selection._split": (
        "GroupKFold", "KFold", "RepeatedKFold", "RepeatedStratifiedKFold", "ShuffleSplit",
        "StratifiedKFold", "StratifiedShuffleSplit", "TimeSeriesSplit"
    ),
    "sklearn.multiclass": ("OneVsOneClassifier", "OneVsRestClassifier", "OutputCodeClassifier",),
    "sklearn.multioutput": (
        "ClassifierChain", "MultiOutputClassifier", "MultiOutputRegressor", "RegressorChain"
    ),
    "sklearn.naive_bayes": (
        "BernoulliNB", "CategoricalNB", "ComplementNB", "GaussianNB", "MultinomialNB"
    ),
    "sklearn.neighbors._ball_tree": ("BallTree", "BallTree32", "BallTree64", "newObj",),
    "sklearn.neighbors._classification": ("KNeighborsClassifier", "RadiusNeighborsClassifier",),
    "sklearn.neighbors._graph": ("KNeighborsTransformer", "RadiusNeighborsTransformer",),
    "sklearn.neighbors._kd_tree": ("KDTree", "KDTree32", "KDTree64", "newObj",),
    "sklearn.neighbors._kde": ("KernelDensity",),
    "sklearn.neighbors._lof": ("LocalOutlierFactor",),
    "sklearn.neighbors._nca": ("NeighborhoodComponentsAnalysis",),
    "sklearn.neighbors._nearest_centroid": ("NearestCentroid",),
    "sklearn.neighbors._regression": ("KNeighborsRegressor", "RadiusNeighborsRegressor",),
    "sklearn.neighbors._unsupervised": ("NearestNeighbors",),
    "sklearn.neural_network._multilayer_perceptron": ("MLPClassifier", "MLPRegressor",),
    "sklearn.neural_network._rbm": ("BernoulliRBM",),
    "sklearn.neural_network._stochastic_optimizers": ("AdamOptimizer",),
    "sklearn.pipeline": ("FeatureUnion", "Pipeline",),
    "sklearn.preprocessing._data": (
        "Binarizer", "KernelCenterer", "MaxAbsScaler", "MinMaxScaler", "Normalizer",
        "PowerTransformer", "QuantileTransformer", "RobustScaler", "StandardScaler"
    ),
    "sklearn.preprocessing._discretization": ("KBinsDiscretizer",),
    "sklearn.preprocessing._encoders": ("OneHotEncoder", "OrdinalEncoder",),
    "sklearn.preprocessing._function_transformer": ("FunctionTransformer",),
    "sklearn.preprocessing._label": ("LabelBinarizer", "LabelEncoder", "MultiLabelBinarizer",),
    "sklearn.preprocessing._polynomial": ("PolynomialFeatures", "SplineTransformer",),
    "sklearn.preprocessing._target_encoder": ("TargetEncoder",),
    "sklearn.random_projection": ("GaussianRandomProjection", "SparseRandomProjection",),
    "sklearn.semi_supervised._label_propagation": ("LabelPropagation", "LabelSpreading",),
    "sklearn.semi_supervised._self_training": ("SelfTrainingClassifier",),
    "sklearn.svm._classes": (
        "LinearSVC", "LinearSVR", "NuSVC", "NuSVR", "OneClassSVM", "SVC", "SVR"
    ),
    "sklearn.tree._classes": (
        "DecisionTreeClassifier", "DecisionTreeRegressor", "ExtraTreeClassifier",
        "ExtraTreeRegressor"
    ),
    "sklearn.tree._tree": ("Tree",),
    "sklearn.utils._bunch": ("Bunch",),
    "sklearn.utils._metadata_requests": ("MetadataRequest", "MethodMetadataRequest",),
}
