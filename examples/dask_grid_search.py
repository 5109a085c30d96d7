"""Grid search over FastMLPClassifier on a Dask cluster, through joblib.

Usage: python examples/dask_grid_search.py [--scheduler ADDRESS] [--workers 2] [--json]

scikit-learn's GridSearchCV runs its fits through joblib, and joblib's
"dask" backend sends them to the workers of a Dask cluster, on this machine
or on many: the same code scales past one machine by pointing the client at
a bigger cluster. Each fit trains one pipeline (StandardScaler, then a
FastMLPClassifier on one thread) on one fold of scikit-learn's 8×8 digits;
the workers pickle the estimators, run them and send back their scores.

Without --scheduler, the example starts a LocalCluster of --workers worker
processes (one thread each) and stops it at the end. With --scheduler
tcp://host:8786 it uses a running cluster instead; its workers need
fastmlp and scikit-learn installed, as the client has them.

Needs scikit-learn and dask's distributed scheduler: pip install '.[dask]' in fastmlp's folder.
"""

import argparse
import json
import time

import joblib
from dask.distributed import Client, LocalCluster, get_task_stream
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from fastmlp.sklearn import FastMLPClassifier

GRID = {
    "fastmlpclassifier__hidden_layer_sizes": [(32,), (100,)],
    "fastmlpclassifier__learning_rate": [0.03, 0.3],
}


def search_on(client, X, y):
    """Fit the grid search with joblib's dask backend; returns it and the workers that ran tasks."""
    model = make_pipeline(StandardScaler(), FastMLPClassifier(epochs=20, random_state=0))
    search = GridSearchCV(model, GRID, cv=3, n_jobs=-1)
    with joblib.parallel_backend("dask"), get_task_stream(client) as tasks:
        search.fit(X, y)
    return search, len(tasks.data), sorted({task["worker"] for task in tasks.data})


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scheduler", help="address of a running Dask scheduler (default: a LocalCluster)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes of the LocalCluster")
    parser.add_argument("--json", action="store_true", help="print one JSON object with the results, nothing else")
    args = parser.parse_args(argv)

    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)

    start = time.perf_counter()
    if args.scheduler:
        with Client(args.scheduler) as client:
            search, n_tasks, workers = search_on(client, X_train, y_train)
    else:
        with LocalCluster(n_workers=args.workers, threads_per_worker=1, dashboard_address=None) as cluster, Client(
            cluster
        ) as client:
            search, n_tasks, workers = search_on(client, X_train, y_train)
    seconds = time.perf_counter() - start

    result = {
        "best_params": {name.split("__")[-1]: value for name, value in search.best_params_.items()},
        "best_cv_accuracy": float(search.best_score_),
        "test_accuracy": float(search.score(X_test, y_test)),
        "fits": len(search.cv_results_["params"]) * search.n_splits_,
        "tasks": n_tasks,
        "workers": workers,
        "seconds": seconds,
    }
    if args.json:
        print(json.dumps(result))
        return result
    print(f"{result['fits']} fits in {n_tasks} tasks on {len(workers)} workers, {seconds:.1f} s")
    for params, score in zip(search.cv_results_["params"], search.cv_results_["mean_test_score"]):
        print(f"  {score:.4f}  {({name.split('__')[-1]: value for name, value in params.items()})}")
    print(f"best: {result['best_params']}, cross-validated accuracy {result['best_cv_accuracy']:.4f}")
    print(f"accuracy of the refitted best model on {len(X_test)} held-out digits: {result['test_accuracy']:.4f}")
    return result


if __name__ == "__main__":
    main()
