"""What runs written before tasks and the metrics.json envelope existed looked like: they were all
classify runs, with the data facts at the top of the checkpoint's hyper_parameters and top-1 on the
test split as their headline. The run folder reads them through these facts alone."""

LEGACY_TASK = "classify"
LEGACY_INFO_KEYS = ("class_names", "input_shape", "mean", "std")
LEGACY_MAIN_METRIC = ("test", "top1", "max")
