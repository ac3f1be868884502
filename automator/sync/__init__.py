"""The synchronizer: pull a branch, render it, server-side apply it, prune what left, report health.

``automator sync`` (see :mod:`automator.sync.command` for every flag and its
``AUTOMATOR_SYNC_*`` variable) runs one pass with ``--once`` or serves (:mod:`.service`).

One pass::

    fetch (shallow, cache dir; --verify-signatures)  ->  render (YAML/JSON trees, kustomize)
      ->  plan (discovery decides scope; --default-namespace; ownership label + annotation)
      ->  apply by phase: CRDs (awaited until Established), Namespaces,
          ClusterRoles/ClusterRoleBindings/StorageClasses/PriorityClasses, everything else
      ->  prune (reverse order, only objects still labelled ours)  ->  inventory  ->  --wait

Each object is written only when needed: a checksum annotation says whether git changed it,
and a comparison with the live object (from one paged LIST per kind) finds out-of-band drift,
so a resync with nothing to do sends no write at all.

Labels and annotations the synchronizer sets on every object it applies:

    sync.automator.io/name: NAME              label: owned by the sync called NAME
    sync.automator.io/owner: NS/NAME          annotation: where its inventory lives
    sync.automator.io/checksum: HEX           annotation: the desired manifest's checksum

Annotations users put on objects in git:

    sync.automator.io/prune: disabled         never delete it when it leaves the repo
    sync.automator.io/apply: if-absent        create it once, never update it
    sync.automator.io/ignore: "true"          neither apply nor prune it
    sync.automator.io/recreate: "true"        delete and recreate on immutable-field changes
    sync.automator.io/ignore-fields: /spec/replicas,/data/x
                                              JSON pointers never reverted (e.g. under an HPA);
                                              also ``--ignore-field [Kind:]/pointer``

On the inventory (ConfigMap or Secret ``automator-sync-NAME``):

    sync.automator.io/suspend: "true"         do nothing until removed (also ``--suspend``)

What runs is reported twice: the inventory records the applied revision, when it was applied,
and per workload its images, health and since when (:mod:`.inventory`); the commit status
(``--commit-status``) carries a summary in a grammar made to be read back (:mod:`.status`).
:mod:`.report` reads either into a :class:`ClusterReport`.
"""

from automator.sync.engine import Synchronizer, SyncOptions
from automator.sync.model import Action, ClusterReport, Health, ObjectRef, ObjectResult, SyncResult, WorkloadReport

__all__ = [
    "Action",
    "ClusterReport",
    "Health",
    "ObjectRef",
    "ObjectResult",
    "SyncOptions",
    "SyncResult",
    "Synchronizer",
    "WorkloadReport",
]
