"""What the embedded and the remote client share: folders and diffs, watching a slot,
and heartbeats that report served traffic in the background."""

from __future__ import annotations

import atexit
import logging
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

from llmreg.resolved import ResolvedBundle

if TYPE_CHECKING:
    from llmreg.bundle import Bundle
    from llmreg.diff import BundleDiff
    from llmreg.policy import Policy
    from llmreg.settings import Settings

log = logging.getLogger("llmreg")


class Watcher:
    """Polls one slot in a daemon thread and calls ``on_change(bundle)`` when it moves.

    Example:
        >>> w = reg.watch("support-rag", env="production", interval=10,
        ...               on_change=lambda b: print("now", b.version))  # doctest: +SKIP
        >>> w.current.version  # doctest: +SKIP
        3
        >>> w.stop()  # doctest: +SKIP
    """

    def __init__(self, resolve: Callable[[], ResolvedBundle], interval: float,
                 on_change: Callable[[ResolvedBundle], None] | None) -> None:
        self._resolve = resolve
        self._interval = interval
        self._on_change = on_change
        self._stop = threading.Event()
        self.current: ResolvedBundle = resolve()
        self._thread = threading.Thread(target=self._run, name="llmreg-watch", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                latest = self._resolve()
            except Exception as exc:  # keep watching through registry outages
                log.debug("llmreg watch: %s", exc)
                continue
            if latest.digest != self.current.digest:
                self.current = latest
                if self._on_change is not None:
                    try:
                        self._on_change(latest)
                    except Exception:
                        log.exception("llmreg watch: on_change failed")

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


class HeartbeatBatcher:
    """Counts served requests per (name, env, digest) and flushes them in the background.

    Never blocks or fails the caller: counting is a dict update under a lock; a failed
    flush keeps the counts for the next one (bounded) and logs at debug level.
    """

    MAX_KEYS = 10_000

    def __init__(self, flush: Callable[[list[dict[str, Any]]], None], interval: float) -> None:
        self._flush_fn = flush
        self._interval = interval
        self._counts: dict[tuple[str, str, str], int] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        atexit.register(self.close)

    def add(self, name: str, env: str, digest: str, count: int = 1) -> None:
        with self._lock:
            key = (name, env, digest)
            if key in self._counts or len(self._counts) < self.MAX_KEYS:
                self._counts[key] = self._counts.get(key, 0) + count
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="llmreg-heartbeat",
                                                daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.flush()

    def flush(self) -> None:
        with self._lock:
            counts, self._counts = self._counts, {}
        if not counts:
            return
        beats = [{"name": n, "env": e, "digest": d, "count": c}
                 for (n, e, d), c in counts.items()]
        try:
            self._flush_fn(beats)
        except Exception as exc:  # heartbeats must never hurt the app
            log.debug("llmreg heartbeat flush failed, will retry: %s", exc)
            with self._lock:
                for (n, e, d), c in counts.items():
                    if len(self._counts) < self.MAX_KEYS:
                        self._counts[(n, e, d)] = self._counts.get((n, e, d), 0) + c

    def close(self) -> None:
        self._stop.set()
        self.flush()


class ClientBase:
    """Shared behaviour; subclasses provide ``get``, ``resolve``, ``close``, ``policy``
    and the storage primitives (``_put_file``, ``_register_bundle``, …)."""

    heartbeat_interval = 30.0
    _batcher: HeartbeatBatcher | None = None
    settings: Settings

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        raise NotImplementedError

    @property
    def policy(self) -> Policy:
        raise NotImplementedError

    def log_bundle(self, bundle: str | Path | Bundle, *, name: str | None = None,
                   message: str, provenance: Mapping[str, Any] | None = None,
                   author: str | None = None) -> Bundle:
        """Register a bundle (a directory or a :class:`Bundle`), capturing provenance.

        Provenance is captured automatically, on the caller's machine: git commit and
        dirty flag of the working tree the bundle came from, user, host, llmreg and
        Python versions. Keys in ``provenance`` (dataset digests, config, metrics, run
        links) are added to it. Artifacts given as files are stored first. Registering
        content the name already has returns the existing version.

        Args:
            bundle: a bundle directory or a Bundle object.
            name: registration name; default the manifest's ``name`` or the folder name.
            message: the changelog message (required).
            provenance: extra provenance to record.
            author: defaults to ``LLMREG_USER`` or the OS user (a server records the
                token's subject instead).

        Returns:
            The registered bundle, with ``.name``, ``.version``, ``.digest`` and
            ``.newly_registered``.

        Example:
            >>> b = reg.log_bundle("bundles/ticket-classifier", message="v1")  # doctest: +SKIP
            >>> b.name, b.version                                # doctest: +SKIP
            ('ticket-classifier', 1)
        """
        from llmreg.bundle import Bundle
        from llmreg.bundledir import load_bundle_dir
        from llmreg.errors import InvalidBundleError
        from llmreg.names import check_name
        from llmreg.provenance import capture

        source: Path | None = None
        if isinstance(bundle, Bundle):
            obj = bundle
            if name is None:
                raise InvalidBundleError("name is required when logging a Bundle object")
        else:
            source = Path(bundle)
            obj, manifest_name = load_bundle_dir(
                source, allow_floating_model_ids=self.policy.models.allow_floating)
            name = name or manifest_name or source.resolve().name
        check_name(name)
        for path in obj._sources.values():  # blobs first: never a dangling reference
            self._put_file(path, None)
        who = author or self.settings.identity()
        record = capture(source, user=who)
        record.update(provenance or {})
        return self._register_bundle(obj, name, message, record, author=who)

    def get(self, ref: str) -> Bundle:
        raise NotImplementedError

    def resolve(self, name: str, env: str | None = None) -> ResolvedBundle:
        raise NotImplementedError

    def _send_heartbeats(self, beats: list[dict[str, Any]]) -> None:
        raise NotImplementedError

    def bundle(self, source: str | Path | Bundle | ResolvedBundle) -> Bundle:
        """A Bundle from a ref, a bundle directory, or a (resolved) Bundle.

        A path (anything with a ``/``, or that exists on disk) is read as a directory;
        anything else is a ref.
        """
        from llmreg.bundle import Bundle
        from llmreg.bundledir import load_bundle_dir, looks_like_path

        if isinstance(source, ResolvedBundle):
            return source.bundle
        if isinstance(source, Bundle):
            return source
        if looks_like_path(source):
            return load_bundle_dir(source)[0]
        return self.get(str(source))

    def diff(self, old: str | Path | Bundle | ResolvedBundle,
             new: str | Path | Bundle | ResolvedBundle) -> BundleDiff:
        """The semantic diff between two bundles: refs, bundle directories or Bundles.

        Example:
            >>> d = reg.diff("support-rag@production", "bundles/support-rag")  # doctest: +SKIP
            >>> d.identical, d.stat()                                           # doctest: +SKIP
            (False, ['system_prompt: +2 -2 lines'])
        """
        from llmreg.diff import diff_bundles

        return diff_bundles(self.bundle(old), self.bundle(new),
                            load=lambda digest: self.get(digest))

    def watch(self, name: str, *, env: str, interval: float = 30.0,
              on_change: Callable[[ResolvedBundle], None] | None = None) -> Watcher:
        """Follow an environment slot: ``on_change`` gets the new bundle when it moves."""
        return Watcher(lambda: self.resolve(name, env=env), interval, on_change)

    def report_served(self, bundle: Bundle | ResolvedBundle, count: int = 1) -> None:
        """Record that ``bundle`` served ``count`` requests. Batched and sent in the
        background; never blocks or raises. These heartbeats feed the stale-production
        alert."""
        if bundle.name is None or bundle.env is None:
            return  # only bundles resolved from a slot say where they run
        if self._batcher is None:
            self._batcher = HeartbeatBatcher(self._send_heartbeats, self.heartbeat_interval)
        self._batcher.add(bundle.name, bundle.env, bundle.digest, count)

    def _blob_chunks(self, digest: str, offset: int) -> Iterator[bytes]:
        raise NotImplementedError

    def pull(self, ref: str, dest: str | Path,
             progress: Callable[[str, int, int], None] | None = None) -> list[Path]:
        """Download every artifact of ``ref`` into ``dest`` under its artifact name.

        Each file is written as ``.<name>.partial`` and renamed only after its digest
        and size check out, so a partial file never appears under its final name. An
        interrupted pull resumes where it stopped; a file already there and intact is
        not downloaded again. ``progress(name, done, total)`` is called as bytes arrive.

        Example:
            >>> reg.pull("ticket-classifier@1", "artifacts/")  # doctest: +SKIP
            [PosixPath('artifacts/eval-set')]
        """
        from llmreg.bundledir import hash_file
        from llmreg.errors import IntegrityError

        folder = Path(dest)
        folder.mkdir(parents=True, exist_ok=True)
        out = []
        for art in self.get(ref).artifacts:
            final = folder / art.name  # names are validated: no separators, no '..'
            if final.is_file() and hash_file(final) == (art.digest, art.size):
                out.append(final)
                continue
            partial = folder / f".{art.name}.partial"
            done = partial.stat().st_size if partial.exists() else 0
            if done > art.size:
                partial.unlink()
                done = 0
            with open(partial, "ab") as fh:
                for chunk in self._blob_chunks(art.digest, done):
                    fh.write(chunk)
                    done += len(chunk)
                    if progress is not None:
                        progress(art.name, done, art.size)
                fh.flush()
                os.fsync(fh.fileno())
            digest, size = hash_file(partial)
            if (digest, size) != (art.digest, art.size):
                partial.unlink()
                raise IntegrityError(
                    f"artifact {art.name!r} of {ref}: the download hashes to {digest} "
                    f"({size} bytes), not {art.digest} ({art.size} bytes); nothing was kept")
            os.replace(partial, final)
            out.append(final)
        return out

    # -- trained models --------------------------------------------------------------

    def _put_file(self, path: Path, progress: Callable[[str, int, int], None] | None
                  ) -> tuple[str, int]:
        raise NotImplementedError

    def _put_bytes(self, data: bytes) -> str:
        raise NotImplementedError

    def _get_blob(self, digest: str) -> bytes:
        raise NotImplementedError

    def _register_bundle(self, bundle: Bundle, name: str, message: str,
                         provenance: dict[str, Any], *, author: str) -> Bundle:
        raise NotImplementedError

    def log_model(self, name: str, *, weights: str | Path | list[str | Path], message: str,
                  dataset: str | Path | None = None,
                  config: dict[str, Any] | str | Path | None = None,
                  metrics: Mapping[str, float] | None = None, framework: str | None = None,
                  base_model: str | None = None,
                  provenance: Mapping[str, Any] | None = None,
                  progress: Callable[[str, int, int], None] | None = None) -> Bundle:
        """Log trained weights as a weights bundle, with everything needed to trust them.

        Weights are streamed into the blob store (constant memory, digest computed while
        streaming). The dataset is hashed deterministically (a file, a folder, or a
        ``sha256:`` digest); git commit and dirty flag, user, host and versions are
        captured; ``config`` (a dict or a JSON/YAML file) and ``metrics`` are recorded.

        Example:
            >>> reg.log_model("ticket-lora", weights="out/adapter.safetensors",
            ...               dataset="data/train", config="train.yaml",
            ...               metrics={"eval_loss": 0.41}, message="lr 2e-4")  # doctest: +SKIP
        """
        from llmreg.bundle import Bundle
        from llmreg.digest import canonical_json
        from llmreg.lineage import (
            check_metrics,
            hash_dataset,
            load_config,
            media_type,
            weights_files,
            weights_name,
        )
        from llmreg.names import check_name
        from llmreg.provenance import capture

        check_name(name)
        files = weights_files(weights)
        names = [weights_name(f) for f in files]
        data = hash_dataset(dataset) if dataset is not None else None  # bad input: fail early
        cfg = load_config(config)
        clean_metrics = check_metrics(dict(metrics)) if metrics else None
        artifacts = []
        for path, artifact_name in zip(files, names, strict=True):
            digest, size = self._put_file(path, progress)
            artifacts.append({"name": artifact_name, "media_type": media_type(path),
                              "digest": digest, "size": size})
        bundle = Bundle.from_dict({"kind": "weights", "artifacts": artifacts,
                                   "framework": framework, "base_model": base_model})
        who = self.settings.identity()
        record = capture(None, user=who)
        if data is not None:
            manifest_digest = (self._put_bytes(canonical_json(data.manifest))
                               if data.manifest else None)
            record["dataset"] = data.provenance(manifest_digest)
        if cfg is not None:
            record["config"] = cfg
        if clean_metrics:
            record["metrics"] = clean_metrics
        record.update(provenance or {})
        return self._register_bundle(bundle, name, message, record, author=who)

    def reproduce_check(self, ref: str, *, weights: str | Path | list[str | Path],
                        dataset: str | Path | None = None) -> dict[str, Any]:
        """Compare rebuilt weights (and dataset) with what ``ref`` registered.

        Returns ``{"match": bool, "weights": [...], "dataset": {...}}``; each entry says
        registered digest, rebuilt digest and whether they match; for a folder dataset,
        ``differing_files`` names the files that differ.
        """
        import json as _json

        from llmreg.bundledir import hash_file
        from llmreg.lineage import compare_datasets, hash_dataset, weights_files, weights_name

        bundle = self.get(ref)
        rebuilt = {weights_name(f): hash_file(f) for f in weights_files(weights)}
        rows = []
        for art in bundle.artifacts:
            got = rebuilt.pop(art.name, None)
            rows.append({"name": art.name, "registered": art.digest,
                         "rebuilt": got[0] if got else None,
                         "match": got is not None and got[0] == art.digest})
        for extra, (digest, _) in sorted(rebuilt.items()):
            rows.append({"name": extra, "registered": None, "rebuilt": digest, "match": False})
        report: dict[str, Any] = {"ref": ref, "weights": rows, "dataset": None}
        if dataset is not None:
            registered = (bundle.info.provenance.get("dataset") if bundle.info else None) or {}
            new = hash_dataset(dataset)
            entry: dict[str, Any] = {"registered": registered.get("digest"),
                                     "rebuilt": new.digest,
                                     "match": registered.get("digest") == new.digest}
            if not entry["match"] and registered.get("manifest"):
                old_manifest = _json.loads(self._get_blob(registered["manifest"]))
                entry["differing_files"] = compare_datasets(old_manifest, new)
            report["dataset"] = entry
        report["match"] = all(r["match"] for r in rows) and (
            report["dataset"] is None or report["dataset"]["match"])
        return report

    def flush_heartbeats(self) -> None:
        """Send pending heartbeats now (tests, graceful shutdown)."""
        if self._batcher is not None:
            self._batcher.flush()
