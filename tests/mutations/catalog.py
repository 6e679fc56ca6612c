"""The mutation catalog: each entry breaks one line of production code the way a plausible bug
would, and names the tests that must catch it. `run.py` applies them one at a time."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Mutation:
    name: str
    file: str  # relative to the repository root
    old: str  # must occur exactly once in the file
    new: str
    tests: tuple[str, ...]  # pytest node ids or files that must fail
    fast: bool = True  # part of the subset CI runs


TENANCY_REST = (
    "tests/test_tenancy.py::test_a_tenant_is_refused_installation_wide_routes_and_changes_nothing"
)
TENANCY_REACH = "tests/test_tenancy.py::test_a_tenant_reaches_none_of_another_tenants_objects"
TENANCY_GQL = "tests/test_tenancy.py::test_graphql_root_fields_hold_the_tenant_rules"
TENANCY_OUT = (
    "tests/test_tenancy.py::test_exports_and_webhook_deliveries_hold_none_of_another_tenants_rows"
)
TRUST = "tests/test_trust.py"
MONITORING = "tests/test_monitoring.py::test_"
FAULTS = "tests/test_faults.py"

MUTATIONS: tuple[Mutation, ...] = (
    # --- tenancy ---------------------------------------------------------------------------------
    Mutation(
        "a tenant reads every prompt (REST)",
        "app/rest/ai_audit/prompts.py",
        "async def get_prompts(state: State, principal: PlatformReader) -> Any:",
        "async def get_prompts(state: State, principal: Reader) -> Any:",
        (TENANCY_REST,),
    ),
    Mutation(
        "GraphQL's installation-wide fields let tenants through",
        "app/gql/permissions.py",
        "        if info.context.principal.tenant_id is not None:",
        "        if False:",
        (TENANCY_GQL,),
    ),
    Mutation(
        "a tenant reads worker host names",
        "app/rest/monitoring.py",
        "async def get_worker_stats(state: State, principal: PlatformReader)",
        "async def get_worker_stats(state: State, principal: Reader)",
        (TENANCY_REST,),
    ),
    Mutation(
        "the log search forgets the tenant",
        "app/services/monitoring/logs.py",
        "        stmt = stmt.where(AgentLog.tenant_id == query.tenant_id)",
        "        pass",
        (TENANCY_REACH,),
    ),
    Mutation(
        "a report takes over another tenant's agent",
        "app/services/agents/registry.py",
        "    elif tenant_id is not None and agent.tenant_id != tenant_id:",
        "    elif False:",
        (TENANCY_REACH, "tests/test_agents.py::test_tenants_see_and_steer_only_their_agents"),
    ),
    Mutation(
        "a tenant's task export holds every tenant's tasks",
        "app/services/jobs/exports.py",
        "            stmt = stmt.where(Task.origin_tenant_id == tenant)",
        "            pass",
        (TENANCY_OUT,),
    ),
    Mutation(
        "a tenant's subscription hears every tenant",
        "app/services/monitoring/notify.py",
        "        if sub.tenant_id is not None and sub.tenant_id != tenant_id:",
        "        if False:",
        (TENANCY_OUT,),
    ),
    Mutation(
        "a tenant claims a worker's agent id",
        "app/services/agents/registry.py",
        "    if agent_id.startswith(WORKER_AGENT_PREFIX) and not system:",
        "    if False:",
        (f"{TRUST}::test_worker_agent_ids_cannot_be_claimed_and_logs_name_only_own_agents",),
    ),
    Mutation(
        "tenant logs name any agent",
        "app/services/monitoring/logs.py",
        "            if e.agent_id and (e.agent_id not in owners"
        " or owners[e.agent_id] != tenant_id):",
        "            if False:",
        (f"{TRUST}::test_worker_agent_ids_cannot_be_claimed_and_logs_name_only_own_agents",),
    ),
    Mutation(
        "an operator runs the cleanup job",
        "app/services/jobs/actions.py",
        '    if kind.type == "cleanup" and not is_admin:',
        "    if False:",
        (f"{TRUST}::test_cleanup_needs_an_admin_and_a_floor_unless_forced",),
    ),
    Mutation(
        "cleanup below the floor without force",
        "app/services/jobs/types.py",
        "    if days is not None and days < CLEANUP_MIN_DAYS and not force:",
        "    if False:",
        (f"{TRUST}::test_cleanup_needs_an_admin_and_a_floor_unless_forced",),
    ),
    Mutation(
        "tenants read internal URLs in health",
        "app/services/health.py",
        "        return found if tenant_id is None else for_tenant(found)",
        "        return found",
        (f"{TRUST}::test_health_tells_tenants_statuses_only_and_probes_are_cached",),
    ),
    Mutation(
        "every health read probes the model services",
        "app/services/health.py",
        "            if self._found is None or now - self._at >= self.ttl:",
        "            if True:",
        (f"{TRUST}::test_health_tells_tenants_statuses_only_and_probes_are_cached",),
    ),
    Mutation(
        "the subscription cap counts every tenant",
        "app/services/monitoring/notify.py",
        "        .where(owned.is_(None) if tenant_id is None else owned == tenant_id)",
        "",
        (f"{TRUST}::test_the_subscription_cap_is_per_tenant_and_race_free",),
    ),
    Mutation(
        "subscription URLs shown to everyone",
        "app/services/monitoring/notify.py",
        "    if owner:",
        "    if True:",
        (f"{TRUST}::test_subscription_urls_are_shown_in_full_only_to_the_owning_tenants_admins",),
    ),
    Mutation(
        "an import takes authors from the document",
        "app/services/prompts/versions.py",
        "                    author=author,\n                    description=v.description,",
        '                    author=str(v.raw.get("author") or author),\n'
        "                    description=v.description,",
        (f"{TRUST}::test_an_import_is_authored_by_its_caller_and_bad_history_stores_nothing",),
    ),
    # --- outbound calls --------------------------------------------------------------------------
    Mutation(
        "no SSRF check on a subscription URL",
        "app/services/monitoring/notify.py",
        '    outbound.check_url(url, allow_private=config.allow_private_webhooks, field="url")',
        "    pass",
        ("tests/test_hardening.py::test_forbidden_webhook_urls_are_refused_when_given",),
    ),
    Mutation(
        "an alert never reaches its rule's channels",
        "app/services/monitoring/notify.py",
        "        url = config.channel_urls.get(channel)",
        "        url = None",
        (MONITORING + "an_agent_that_stops_is_alerted_signed_live_and_resolved",),
        fast=False,
    ),
    Mutation(
        "health calls a dead Redis healthy",
        "app/services/health.py",
        '    if not ok:\n        return Check("unhealthy", round(ms, 2), {"error": error})\n'
        "    detail: dict[str, Any] = {}",
        '    if False:\n        return Check("unhealthy", round(ms, 2), {"error": error})\n'
        "    detail: dict[str, Any] = {}",
        ("tests/test_monitoring.py::test_health_names_the_component_that_is_down",),
    ),
    Mutation(
        "alert channels ignore their allow-list",
        "workers/webhooks.py",
        "            allow_list=outbound.AllowList.parse(settings.alert_channel_allowed_targets),",
        "            allow_list=None,",
        (f"{TRUST}::test_alert_channels_have_their_own_allow_list_and_user_urls_stay_public",),
    ),
    Mutation(
        "a refusal names the resolved address",
        "app/services/outbound.py",
        '            raise RefusedURL("refused: not a public address")',
        '            raise RefusedURL(f"{host} resolves to a forbidden address ({bad[0]})")',
        (f"{TRUST}::test_alert_channels_have_their_own_allow_list_and_user_urls_stay_public",),
    ),
    Mutation(
        "a webhook attempt has no overall deadline",
        "workers/webhooks.py",
        "        async with asyncio.timeout(deadline):",
        "        async with asyncio.timeout(None):",
        (f"{FAULTS}::test_a_dribbling_receiver_holds_only_its_own_delivery",),
    ),
    # --- the camera pipeline ------------------------------------------------------------------
    Mutation(
        "the watcher registers poison files",
        "workers/pipeline/watcher.py",
        "            reason = await asyncio.to_thread(self._refusal, entry[0])",
        "            reason = None",
        (f"{FAULTS}::test_poison_files_are_quarantined_and_every_other_file_flows_on",),
        fast=False,
    ),
    Mutation(
        "images of any pixel count are decoded",
        "workers/pipeline/models.py",
        "                if im.width * im.height > max_pixels:",
        "                if False:",
        (f"{FAULTS}::test_poison_files_are_quarantined_and_every_other_file_flows_on",),
        fast=False,
    ),
    Mutation(
        "the simulated analyzer ignores its prompt",
        "workers/pipeline/handlers.py",
        "            system_prompt=system_prompt,",
        "            system_prompt=risk.SYSTEM_PROMPT,",
        ("tests/test_prompts.py::test_prompt_tests_run_the_analyzer_and_change_nothing",),
    ),
    Mutation(
        "a DLQ requeue takes nothing",
        "app/services/dlq.py",
        "        .limit(min(limit, REQUEUE_ALL_MAX))",
        "        .limit(0)",
        ("tests/test_pipeline.py::test_corrupt_image_is_dead_lettered_without_retries",),
        fast=False,
    ),
    Mutation(
        "an evaluated event is judged again unless forced",
        "app/rest/ai_audit/reports.py",
        "    if existing is None or force:",
        "    if True:",
        ("tests/test_audit.py",),
        fast=False,
    ),
    Mutation(
        "a breaker's refusal spends an attempt",
        "workers/runner.py",
        "        return await _postponed(state, task, exc)",
        "        return await _failed(state, task, str(exc), retryable=True)",
        ("tests/test_pipeline.py::test_breaker_opens_for_every_process_and_recovers",),
        fast=False,
    ),
    Mutation(
        "a refused request counts against the breaker",
        "workers/pipeline/models.py",
        "        await breakers.record(name, ok=not exc.retryable, generation=generation,"
        " error=str(exc))",
        "        await breakers.record(name, ok=False, generation=generation, error=str(exc))",
        ("tests/test_pipeline.py::test_a_refused_request_does_not_count_against_the_breaker",),
    ),
    Mutation(
        "images of any size are read",
        "workers/pipeline/handlers.py",
        "    if len(data) > max_bytes:",
        "    if False:",
        (f"{FAULTS}::test_oversized_files_fail_at_once",),
    ),
    Mutation(
        "a call from before an open closes the breaker",
        "app/services/pipeline/breakers.py",
        "if tonumber(redis.call('hget', key, 'gen') or '0') ~= tonumber(ARGV[6]) then",
        "if false then",
        ("tests/test_pipeline.py::test_breaker_states_on_redis",),
    ),
    # --- jobs, exports, the alert evaluator -------------------------------------------------
    Mutation(
        "a retried ai_processing job judges every event again",
        "workers/audit.py",
        "    todo = [i for i in ids if i not in done_before]",
        "    todo = ids",
        (f"{FAULTS}::test_an_ai_processing_job_longer_than_an_attempt_judges_each_event_once",),
    ),
    Mutation(
        "two export attempts share one partial file",
        "app/services/jobs/exports.py",
        "    partial = export_files.attempt_file(path)",
        '    partial = path.with_suffix(path.suffix + ".partial")',
        (f"{FAULTS}::test_two_attempts_of_one_export_at_once_leave_one_complete_file",),
    ),
    Mutation(
        "CSV cells keep their formulas",
        "app/services/export_files.py",
        """        return "'" + value""",
        "        return value",
        (f"{FAULTS}::test_csv_exports_neutralise_formulas",),
    ),
    Mutation(
        "every worker's pass counts an occurrence",
        "app/services/monitoring/evaluator.py",
        "    if not await _due(session, config.eval_interval_seconds):",
        "    if False:",
        (f"{FAULTS}::test_passes_closer_than_an_interval_count_one_occurrence",),
    ),
    Mutation(
        "keyset pages drop the id tie-breaker",
        "app/services/paging.py",
        "    return ordered, (id_column.desc() if descending else id_column.asc())",
        "    return ordered, (id_column.asc() if descending else id_column.desc())",
        ("tests/test_pagination.py::test_security_events_by_risk_score_walk_ties_exactly_once",),
    ),
    # --- hostile input ---------------------------------------------------------------------------
    Mutation(
        "JSON of any depth",
        "app/hygiene.py",
        "        if depth >= MAX_JSON_DEPTH:",
        "        if False:",
        (f"{FAULTS}::test_deeply_nested_json_is_bad_input_on_both_doors",),
    ),
    Mutation(
        "a heartbeat with any number of breakdown keys",
        "app/services/agents/registry.py",
        "        if len(breakdown) > MAX_KEYS"
        " or any(len(str(k)) > MAX_KEY_CHARS for k in breakdown):",
        "        if False:",
        (f"{FAULTS}::test_unbounded_inputs_have_bounds_on_both_doors",),
    ),
    # --- the contract (issue 24) ---------------------------------------------------------------
    Mutation(
        "unknown query parameters pass silently",
        "app/rest/params.py",
        "    if unknown:",
        "    if False:",
        ("tests/test_seed_clients.py::test_a_mistyped_query_parameter_is_refused_by_name",),
    ),
    Mutation(
        "a deep page loses its first row",
        "app/services/paging.py",
        "or_(follows(column, id_column, start, descending=desc), id_column == start.id)",
        "or_(follows(column, id_column, start, descending=desc), id_column != id_column)",
        ("tests/test_pagination.py::test_every_page_seed_001_counts_is_served",),
    ),
    Mutation(
        "the log tail ignores the level floor",
        "app/services/monitoring/logs.py",
        "AgentLog.level_no >= LEVELS[level])",
        "AgentLog.level_no >= 0)",
        (
            "tests/test_graphql_parity.py::"
            "test_logs_ingested_in_graphql_are_tailed_live_and_searchable_over_rest",
        ),
    ),
    Mutation(
        "an opening breaker announces the wrong state",
        "app/services/pipeline/breakers.py",
        "state = 'open', previous_state = state",
        "state = 'closed', previous_state = state",
        ("tests/test_graphql_parity.py::test_circuit_breaker_changes_are_pushed",),
    ),
    Mutation(
        "two installations on one Redis share an events channel",
        "app/events.py",
        '    return CHANNEL if db == 0 else f"{CHANNEL}:{db}"',
        "    return CHANNEL",
        (f"{TRUST}::test_installations_on_one_redis_server_never_hear_each_others_events",),
    ),
    Mutation(
        "a thumbnail reads files outside the camera folders",
        "app/services/pipeline/thumbnails.py",
        "    if not path.is_relative_to(root.resolve()):",
        "    if False:",
        ("tests/test_graphql_parity.py::test_a_detections_frame_comes_as_a_bounded_thumbnail",),
    ),
    # --- the console (issue 25) --------------------------------------------------------------
    Mutation(
        "the console shows a viewer the action buttons",
        "app/gql/viewer.py",
        "            can_operate=p.can(Permission.OPERATE),",
        "            can_operate=True,",
        (
            "tests/test_console.py::"
            "test_a_viewer_sees_no_action_and_a_tenant_none_of_another_tenants_rows",
        ),
    ),
    Mutation(
        "job parameters take any key",
        "app/rest/job_start.py",
        '    model_config = ConfigDict(extra="forbid")',
        '    model_config = ConfigDict(extra="ignore")',
        ("tests/test_seed_clients.py::test_each_job_type_states_its_parameters_in_the_document",),
    ),
    Mutation(
        "seed 004's cache loses its hit rate",
        "app/rest/ai_monitoring/overview.py",
        '            "hit_rate": cache.detail.get("hit_rate"),',
        '            "hit_rate": None,',
        ("tests/test_seed_clients.py::test_seed_004_health_names_the_seed_components",),
    ),
)
