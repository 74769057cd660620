"""A stdout callback for tests/nm/test_ansible.py: the playbook's task results as one JSON
document on stdout, `{"tasks": [{"name", "status", "result"}], "stats": {host: {...}}}`.

ansible-core has no JSON stdout callback (ansible.posix.json is in a collection that
PyPI's ansible-core does not ship, and Ansible Galaxy is not where the tests install
from); this one keeps each result whole (diff, warnings and the module's own keys)."""

from __future__ import annotations

import json
import sys

from ansible.module_utils.common.json import AnsibleJSONEncoder
from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "stdout"
    CALLBACK_NAME = "results_json"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.tasks = []

    def _record(self, result, status):
        res = getattr(result, "result", None)
        if res is None:
            res = result._result
        task = getattr(result, "task", None) or result._task
        self.tasks.append({"name": task.get_name(), "host": result._host.get_name(),
                           "status": status, "result": dict(res)})

    def v2_runner_on_ok(self, result, **kwargs):
        self._record(result, "ok")

    def v2_runner_on_failed(self, result, ignore_errors=False, **kwargs):
        self._record(result, "failed")

    def v2_runner_on_skipped(self, result, **kwargs):
        self._record(result, "skipped")

    def v2_runner_on_unreachable(self, result, **kwargs):
        self._record(result, "unreachable")

    def v2_playbook_on_stats(self, stats):
        hosts = sorted(stats.processed.keys())
        doc = {"tasks": self.tasks, "stats": {h: stats.summarize(h) for h in hosts}}
        sys.stdout.write(json.dumps(doc, cls=AnsibleJSONEncoder) + "\n")
        sys.stdout.flush()
