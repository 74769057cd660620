#!/usr/bin/python
# Copyright: mptcpstate developers
# Apache-2.0 (see the project's LICENSE)
"""Ansible module mptcpstate.mptcpstate.apply: mptcpstate.apply() with check mode and diff."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: apply
short_description: Apply a declarative MultiPath TCP state (nmstate's schema)
version_added: "0.1.0"
description:
  - Brings the managed host's network namespace to O(state), through NetworkManager or,
    with O(kernel_only), directly over netlink. Built on the C(mptcpstate) Python package
    (C(mptcpstate.apply)), not on the CLI.
  - The apply is transactional. All of O(state) is validated and the live checks run
    before anything is written; only the interfaces that differ are changed (under a
    NetworkManager checkpoint, or with the kernel state recorded); the result is
    verified against the kernel; on any failure everything is rolled back and the task
    fails with the error's kind.
  - C(changed) comes from the plan, what the apply did (or, in check mode, would do).
    An empty plan is exactly an apply that writes nothing, so a state that already
    holds is reported unchanged.
  - In check mode the module runs a dry run (C(mptcpstate.apply(state, dry_run=True)))
    which validates, reads and plans, and writes nothing (no profile, no checkpoint, no
    knob). With C(--diff) it shows, per interface and for the host knobs, the keys of
    O(state) that differ, before and after.
options:
  state:
    description:
      - The desired state, nmstate's schema (C(interfaces) with their C(mptcp), C(ipv4),
        C(ipv6) settings; the host-wide C(mptcp) knobs).
      - A dict, or a YAML or JSON string (for instance from C(lookup('file', ...))).
    type: raw
    required: true
  kernel_only:
    description:
      - Work over netlink only, without NetworkManager (hosts without it). The changes
        are runtime state, gone at reboot.
    type: bool
    default: false
  verify:
    description:
      - Verify the result against the kernel before committing (polls up to
        O(verify_timeout) seconds); a failed verification rolls the change back.
    type: bool
    default: true
  verify_timeout:
    description:
      - Seconds verification waits for the kernel to reach the state.
    type: float
    default: 5.0
  rollback_timeout:
    description:
      - Seconds after which NetworkManager rolls the apply's checkpoint back by itself
        should the apply not finish (its process killed, the host cut off); C(0) for
        never.
    type: int
    default: 60
  save_to_disk:
    description:
      - Write NetworkManager profiles to disk; V(false) keeps them in its memory only.
    type: bool
    default: true
attributes:
  check_mode:
    support: full
    description: A dry run, C(mptcpstate.apply(state, dry_run=True)); returns the plan.
  diff_mode:
    support: full
    description: The plan's before/after of the keys that differ, per interface and host.
requirements:
  - The C(mptcpstate) Python package on the managed host, for the interpreter Ansible
    uses there (C(ansible_python_interpreter)).
  - Root on the managed host (C(become)) for anything but check mode.
notes:
  - The plan's C(interfaces) are in natural order (C(veth2) before C(veth10)), each with
    its C(actions) in the order they happen (NetworkManager C(profile-added),
    C(profile-updated), C(reapply), C(activation), C(deactivation), C(profile-deleted);
    kernel C(link-up), C(endpoint-removed), C(address-removed), C(address-added),
    C(endpoint-replaced), C(endpoint-added), C(endpoint-flags-changed-in-place),
    C(link-down)).
  - Warnings of the library (for instance an endpoint deleted and re-added, which closes
    the subflows that use it) are the task's warnings.
author:
  - mptcpstate developers
"""

EXAMPLES = r"""
- name: MPTCP on the uplinks, through NetworkManager
  mptcpstate.mptcpstate.apply:
    state:
      mptcp:
        limits:
          subflows: 4
      interfaces:
        - name: eth1
          type: ethernet
          state: up
          mptcp:
            address-flags: [subflow, signal]
          ipv4:
            enabled: true
            dhcp: false
            address:
              - ip: 192.0.2.2
                prefix-length: 24

- name: The same from a file, kernel only (no NetworkManager on this host)
  mptcpstate.mptcpstate.apply:
    state: "{{ lookup('file', 'mptcp.yml') }}"
    kernel_only: true

- name: What would change (check mode), shown as a diff
  mptcpstate.mptcpstate.apply:
    state: "{{ mptcp_state }}"
  check_mode: true
  diff: true
  register: would
"""

RETURN = r"""
changed:
  description: >-
    Whether the apply changed something (in check mode, whether it would): the plan is
    not empty.
  returned: always
  type: bool
plan:
  description:
    - What the apply did (in check mode, what it would do), as C(mptcpstate.apply(...,
      with_plan=True)) returns it. Empty lists when nothing had to change.
  returned: success
  type: dict
  contains:
    interfaces:
      description: The interfaces that change, each C({name, actions, before, after});
        C(before)/C(after) hold only the keys of the state that differ, by dotted schema
        names (C(mptcp.address-flags), C(ipv4.address), C(state)...), C(before) as
        C(show --kernel) has them (C(null) where it has none).
      type: list
      elements: dict
    host:
      description: The host knobs that change, each C({key, before, after})
        (C(mptcp.enabled), C(mptcp.path-manager), C(mptcp.scheduler),
        C(mptcp.limits.subflows), C(mptcp.limits.add-addr-accepted)).
      type: list
      elements: dict
  sample:
    interfaces:
      - name: eth1
        actions: [profile-updated, reapply]
        before: {mptcp.address-flags: [subflow]}
        after: {mptcp.address-flags: [signal, subflow]}
    host:
      - key: mptcp.limits.subflows
        before: 2
        after: 4
diff:
  description: >-
    With C(--diff), one entry per changed interface (C(before_header) its name,
    C(after_header) its name and actions) and one for the host knobs, each
    C(before)/C(after) a line per differing key, C(KEY: VALUE) with the value in JSON.
  returned: success, in diff mode
  type: list
  elements: dict
kind:
  description: The error kind, the name of the library's error table (C(InvalidArgument),
    C(NotSupported), C(PermissionDenied), C(NetworkManager), C(Kernel), C(Verification),
    C(Timeout), C(Busy), C(Bug)); the Python exception is C(mptcpstate.<kind>Error).
  returned: failure
  type: str
  sample: InvalidArgument
code:
  description: The error kind's stable number (the CLI's exit status).
  returned: failure
  type: int
  sample: 1
error:
  description: "The library's message (C(msg) is C(KIND: message))."
  returned: failure
  type: str
rollback:
  description:
    - What became of the change on failure. V(nothing-written) (the error came before any
      write, as for C(InvalidArgument)), V(rolled-back) (written, then everything put
      back, as for C(Verification)), or V(rollback-failed) (the message says what did
      not come back; the task then reports C(changed)).
  returned: failure
  type: str
  sample: rolled-back
"""

import json
import logging
import traceback

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

try:
    import mptcpstate

    HAS_MPTCPSTATE = True
    IMPORT_ERROR = None
except ImportError:
    HAS_MPTCPSTATE = False
    IMPORT_ERROR = traceback.format_exc()



class _Warnings(logging.Handler):
    """Collects the library's warnings (logger "mptcpstate") for the task's result."""

    def __init__(self):
        logging.Handler.__init__(self, logging.WARNING)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def _value(v):
    return json.dumps(v, sort_keys=True, separators=(", ", ": "))


def _lines(keys):
    return "".join("%s: %s\n" % (k, _value(v)) for k, v in keys)


def plan_diff(plan):
    """Ansible's diff of a plan: one entry per interface, one for the host knobs; each
    before/after a line per key that differs."""
    out = []
    for i in plan.get("interfaces", []):
        before, after = i.get("before") or {}, i.get("after") or {}
        keys = sorted(set(before) | set(after))
        out.append({
            "before_header": i["name"],
            "after_header": "%s: %s" % (i["name"], ", ".join(i.get("actions", []))),
            "before": _lines((k, before.get(k)) for k in keys),
            "after": _lines((k, after.get(k)) for k in keys),
        })
    host = plan.get("host", [])
    if host:
        out.append({
            "before_header": "host",
            "after_header": "host",
            "before": _lines((k["key"], k["before"]) for k in host),
            "after": _lines((k["key"], k["after"]) for k in host),
        })
    return out


def rollback_of(error):
    """The exception's `rollback` (None: the apply failed before its first write)."""
    return getattr(error, "rollback", None) or "nothing-written"


def main():
    module = AnsibleModule(
        argument_spec=dict(
            state=dict(type="raw", required=True),
            kernel_only=dict(type="bool", default=False),
            verify=dict(type="bool", default=True),
            verify_timeout=dict(type="float", default=5.0),
            rollback_timeout=dict(type="int", default=60),
            save_to_disk=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    if not HAS_MPTCPSTATE:
        module.fail_json(msg=missing_required_lib("mptcpstate"), exception=IMPORT_ERROR)

    p = module.params
    state = p["state"]
    if not isinstance(state, (dict, str)):
        module.fail_json(
            msg="InvalidArgument: state must be a dict or a YAML or JSON string, not %s"
            % type(state).__name__,
            kind="InvalidArgument", code=1, rollback="nothing-written", changed=False)

    warnings = _Warnings()
    logger = logging.getLogger("mptcpstate")
    logger.addHandler(warnings)
    try:
        if module.check_mode:
            plan = mptcpstate.apply(state, kernel_only=p["kernel_only"], dry_run=True)
        else:
            plan = mptcpstate.apply(
                state,
                kernel_only=p["kernel_only"],
                verify_change=p["verify"],
                verify_timeout=p["verify_timeout"],
                rollback_timeout=p["rollback_timeout"],
                save_to_disk=p["save_to_disk"],
                with_plan=True,
            )["plan"]
    except mptcpstate.MptcpStateError as e:
        logger.removeHandler(warnings)
        for w in warnings.messages:
            module.warn(w)
        message = str(e)
        rollback = rollback_of(e)
        module.fail_json(
            msg="%s: %s" % (e.kind, message),
            kind=e.kind, code=e.code, error=message, rollback=rollback,
            changed=rollback == "rollback-failed")
    logger.removeHandler(warnings)
    for w in warnings.messages:
        module.warn(w)

    result = dict(changed=bool(plan["interfaces"] or plan["host"]), plan=plan)
    if module._diff:
        result["diff"] = plan_diff(plan)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
