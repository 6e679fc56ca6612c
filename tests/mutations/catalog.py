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
OWN_TYPES = "tests/test_own_task_types.py"
TIME = "tests/test_time.py"
SCHEDULES = "tests/test_schedules.py"
WAITING = "tests/test_waiting_steps.py"
IDEMPOTENCY = "tests/test_idempotency.py"
CONCURRENCY = "tests/test_concurrency_keys.py"

MUTATIONS: tuple[Mutation, ...] = (
    # --- tenancy ---------------------------------------------------------------------------------
    Mutation(
        "a tenant reads every prompt (REST)",
        "app/rest/ai_audit/prompts.py",
        "from app.rest.deps import PlatformOperator, PlatformReader, State",
        "from app.rest.deps import PlatformOperator, State\n"
        "from app.rest.deps import Reader as PlatformReader",
        (TENANCY_REST,),
    ),
    Mutation(
        "GraphQL's installation-wide reads let tenants through",
        "app/gql/permissions.py",
        "    access = PLATFORM_READ",
        "    access = READ",
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
        "app/services/fleet/health.py",
        "        return found if tenant_id is None else for_tenant(found)",
        "        return found",
        (f"{TRUST}::test_health_tells_tenants_statuses_only_and_probes_are_cached",),
    ),
    Mutation(
        "every health read probes the model services",
        "app/services/fleet/health.py",
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
        "app/services/fleet/health.py",
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
        "app/services/webhooks/outbound.py",
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
        "workers/models.py",
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
        "app/services/tasks/dlq.py",
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
        "        return await _postponed(state, task, str(exc), exc.retry_after)",
        "        return await _failed(state, task, str(exc), retryable=True)",
        ("tests/test_pipeline.py::test_breaker_opens_for_every_process_and_recovers",),
        fast=False,
    ),
    Mutation(
        "a refused request counts against the breaker",
        "workers/models.py",
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
        "app/services/fleet/breakers.py",
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
        "app/kernel/export_files.py",
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
        "app/kernel/paging.py",
        "    return ordered, (id_column.desc() if descending else id_column.asc())",
        "    return ordered, (id_column.asc() if descending else id_column.desc())",
        ("tests/test_pagination.py::test_security_events_by_risk_score_walk_ties_exactly_once",),
    ),
    # --- hostile input ---------------------------------------------------------------------------
    Mutation(
        "JSON of any depth",
        "app/edge/hygiene.py",
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
        "app/kernel/paging.py",
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
        "app/services/fleet/breakers.py",
        "state = 'open', previous_state = state",
        "state = 'closed', previous_state = state",
        ("tests/test_graphql_parity.py::test_circuit_breaker_changes_are_pushed",),
    ),
    Mutation(
        "two installations on one Redis share an events channel",
        "app/platform/events.py",
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
        "            can_operate=p.allows(OPERATE),",
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
    # --- safe errors (issue 29) ---
    Mutation(
        "data errors are retried",
        "workers/runner.py",
        "        ref, data = new_ref(), data_fault(exc)",
        "        ref, data = new_ref(), False",
        (
            "tests/test_safe_errors.py::test_a_job_failing_on_a_data_error_runs_once_and_records_a_safe_error",
        ),
    ),
    Mutation(
        "job errors store the raw exception",
        "workers/runner.py",
        "_failed(state, task, safe_error(exc, ref), retryable=not data)",
        '_failed(state, task, f"{type(exc).__name__}: {exc}", retryable=not data)',
        (
            "tests/test_safe_errors.py::test_a_job_failing_on_a_data_error_runs_once_and_records_a_safe_error",
            "tests/test_safe_errors.py::"
            "test_an_unexpected_handler_error_is_retried_and_recorded_as_internal_error",
        ),
    ),
    Mutation(
        "handler bugs are not retried",
        "workers/runner.py",
        "safe_error(exc, ref), retryable=not data)",
        "safe_error(exc, ref), retryable=False)",
        (
            "tests/test_safe_errors.py::"
            "test_an_unexpected_handler_error_is_retried_and_recorded_as_internal_error",
        ),
        fast=False,
    ),
    Mutation(
        "provider errors keep internal addresses",
        "workers/runner.py",
        "    text, redacted = redact_internal(str(exc))",
        "    text, redacted = str(exc), False",
        ("tests/test_safe_errors.py::test_provider_messages_lose_addresses_and_sql",),
        fast=False,
    ),
    Mutation(
        "column lengths are not checked",
        "app/platform/storable.py",
        "        if length is not None and isinstance(value, str) and len(value) > length:",
        "        if False:",
        (
            "tests/test_safe_errors.py::test_a_value_longer_than_its_column_is_refused_naming_the_field",
        ),
    ),
    Mutation(
        "column integer ranges are not checked",
        "app/platform/storable.py",
        "        if isinstance(value, int) and not bounds[0] <= value <= bounds[1]:",
        "        if False:",
        ("tests/test_safe_errors.py::test_a_huge_number_in_job_parameters_is_refused_naming_it",),
        fast=False,
    ),
    Mutation(
        "a job's since may lie outside the timestamp range",
        "app/services/jobs/types.py",
        "    if timestamp_problem(when if when.tzinfo else when.replace(tzinfo=UTC)):",
        "    if False:",
        (
            "tests/test_safe_errors.py::test_a_since_outside_the_timestamp_range_is_refused_at_start_naming_it",
        ),
    ),
    Mutation(
        "startJob takes any min_risk_score",
        "app/services/jobs/types.py",
        "(not _integer(score) or not 0 <= score <= MAX_RISK_SCORE)",
        "(not _integer(score))",
        ("tests/test_safe_errors.py::test_a_huge_number_in_job_parameters_is_refused_naming_it",),
        fast=False,
    ),
    Mutation(
        "an unstorable value a resolver lets through is masked",
        "app/gql/hygiene.py",
        "    if not isinstance(original, Unstorable):",
        "    if True:",
        (
            "tests/test_safe_errors.py::"
            "test_an_unstorable_value_a_resolver_does_not_catch_is_bad_user_input",
        ),
        fast=False,
    ),
    # --- query cost (issue 29) ---
    Mutation(
        "limit is not priced",
        "app/gql/cost.py",
        'SIZE_ARGUMENTS = ("first", "last", "limit")',
        'SIZE_ARGUMENTS = ("first", "last")',
        ("tests/test_query_cost.py::test_a_limit_is_priced_as_a_page",),
    ),
    Mutation(
        "a variable's default prices a list size",
        "app/gql/cost.py",
        "                given.append(self.largest(coordinate))",
        "                given.append(1)",
        ("tests/test_query_cost.py::test_a_limit_is_priced_as_a_page",),
    ),
    Mutation(
        "thumbnails weigh 1",
        "app/gql/pipeline/types.py",
        "directives=[Cost(weight=100)],",
        "directives=[Cost(weight=1)],",
        ("tests/test_query_cost.py::test_thumbnails_weigh_and_are_capped_per_operation",),
    ),
    Mutation(
        "thumbnails are not capped per operation",
        "app/gql/cost.py",
        "                if asked > cap:",
        "                if False:",
        ("tests/test_query_cost.py::test_thumbnails_weigh_and_are_capped_per_operation",),
    ),
    Mutation(
        "a thumbnail is decoded again",
        "app/services/pipeline/thumbnails.py",
        "    _cache[key] = made",
        "    return",
        (
            "tests/test_query_cost.py::"
            "test_the_consoles_pipeline_page_is_accepted_and_decodes_each_frame_once",
        ),
    ),
    Mutation(
        "an aliased thumbnail is decoded once per alias",
        "app/services/pipeline/thumbnails.py",
        "    if making is not None and making.get_loop() is loop:",
        "    if False:",
        (
            "tests/test_query_cost.py::"
            "test_the_consoles_pipeline_page_is_accepted_and_decodes_each_frame_once",
        ),
    ),
    Mutation(
        "thumbnails decode on the default thread pool",
        "app/services/pipeline/thumbnails.py",
        "            _pool(threads),",
        "            None,",
        (
            "tests/test_query_cost.py::"
            "test_the_consoles_pipeline_page_is_accepted_and_decodes_each_frame_once",
        ),
    ),
    # --- the scope rule (issue 29) ---------------------------------------------------------------
    Mutation(
        "a tenant credential keeps its admin role's rights",
        "app/auth/principals.py",
        "        return held if self.tenant_id is None else held & TENANT_PERMISSIONS",
        "        return held",
        (
            "tests/test_scope.py::"
            "test_a_tenant_principal_holds_at_most_read_and_operate_whatever_its_role",
        ),
    ),
    Mutation(
        "installation-wide routes let tenant credentials through",
        "app/auth/principals.py",
        "        if access.scope is Scope.INSTALLATION and self.tenant_id is not None:",
        "        if False:",
        (TENANCY_REST,),
    ),
    Mutation(
        "the LLM queue's admin actions are declared tenant-scoped operations",
        "app/rest/llm_queue.py",
        "async def clear_llm_semaphore(state: State, principal: Admin)",
        "async def clear_llm_semaphore(state: State, principal: Operator)",
        (TENANCY_REST,),
    ),
    Mutation(
        "a route declaring no access is included",
        "app/rest/access.py",
        "    if len(declared) != 1:",
        "    if len(declared) > 1:",
        ("tests/test_scope.py::test_a_route_without_an_access_declaration_is_not_built",),
    ),
    Mutation(
        "a root field declaring no access is built",
        "app/gql/permissions.py",
        "    if len(declared) != 1:",
        "    if len(declared) > 1:",
        ("tests/test_scope.py::test_a_root_field_without_an_access_declaration_is_not_built",),
    ),
    Mutation(
        "a viewer may operate when unscoped",
        "app/auth/principals.py",
        '    "viewer": frozenset({Permission.READ}),',
        '    "viewer": frozenset({Permission.READ, Permission.OPERATE}),',
        ("tests/test_tenancy.py::test_unscoped_credentials_are_refused_by_their_role_alone",),
    ),
    Mutation(
        "the API key wins over the bearer token",
        "app/auth/credentials.py",
        "        if authorization:\n            scheme, _, token",
        "        if authorization and not api_key:\n            scheme, _, token",
        ("tests/test_scope.py::test_two_credentials_are_judged_by_the_bearer_token",),
    ),
    Mutation(
        "a client's task runs on a pipeline queue",
        "app/services/tasks/specs.py",
        "    if not system and queue in defaults.reserved_queues:",
        "    if False:",
        ("tests/test_scope.py::test_a_client_task_naming_a_pipeline_queue_is_refused",),
    ),
    Mutation(
        "a live log tail reads every tenant's new lines",
        "app/services/monitoring/logs.py",
        "    if tenant_id is not None:\n        stmt = stmt.where(AgentLog.tenant_id == tenant_id)"
        "\n    return",
        "    if False:\n        stmt = stmt.where(AgentLog.tenant_id == tenant_id)\n    return",
        ("tests/test_scope.py::test_a_log_tail_reads_only_its_tenants_lines_of_a_mixed_ingest",),
    ),
    # --- watcher supervision (issue 29) ---
    Mutation(
        "the camera watcher dies with its event source",
        "workers/pipeline/supervision.py",
        "            except Exception as exc:  # (an ExceptionGroup too;",
        "            except OSError as exc:  # (an ExceptionGroup too;",
        (f"{FAULTS}::test_poison_arriving_while_watching_holds_up_no_other_camera",),
        fast=False,
    ),
    Mutation(
        "health hides the camera watcher's restarts",
        "app/services/pipeline/quarantine.py",
        '        "restarts": int(found.get("restarts") or 0),',
        '        "restarts": 0,',
        (f"{FAULTS}::test_poison_arriving_while_watching_holds_up_no_other_camera",),
        fast=False,
    ),
    # --- pages and files (issue 29) ---
    Mutation(
        "GraphiQL and the console without CSP, frame-ancestors or Referrer-Policy",
        "app/edge/headers.py",
        "    if content_type in HTML_TYPES:",
        "    if False:",
        ("tests/test_pages.py::test_every_html_page_carries_the_page_headers",),
    ),
    Mutation(
        "pages may be framed",
        "app/edge/headers.py",
        "form-action 'self'; frame-ancestors 'none'\"",
        "form-action 'self'\"",
        ("tests/test_pages.py::test_every_html_page_carries_the_page_headers",),
    ),
    Mutation(
        "a page whose type names a charset escapes the policy",
        "app/edge/headers.py",
        '            content_type = value.split(b";", 1)[0].strip().lower()',
        "            content_type = value.strip().lower()",
        ("tests/test_pages.py::test_every_html_page_carries_the_page_headers",),
    ),
    Mutation(
        "responses without nosniff",
        "app/edge/headers.py",
        "    ours = [NOSNIFF]",
        "    ours = []",
        ("tests/test_pages.py::test_every_response_is_nosniff",),
    ),
    Mutation(
        "downloads cacheable",
        "app/edge/headers.py",
        "    if attachment:",
        "    if False:",
        ("tests/test_pages.py::test_export_downloads_are_never_cached",),
    ),
    Mutation(
        "the asset mount serves the console's HTML",
        "app/console/__init__.py",
        "        if media_type not in ASSET_TYPES:",
        "        if False:",
        ("tests/test_pages.py::test_no_html_comes_from_the_asset_mount",),
    ),
    Mutation(
        "a console code works twice",
        "app/console/codes.py",
        '    token = await request.scope["state"]["app"].redis.getdel(code_key(code))',
        '    token = await request.scope["state"]["app"].redis.get(code_key(code))',
        ("tests/test_pages.py::test_a_console_code_gives_its_token_once",),
    ),
    Mutation(
        "a console code never expires",
        "app/console/codes.py",
        "    client.set(code_key(code), token, px=max(1, int(ttl_seconds * 1000)))",
        "    client.set(code_key(code), token)",
        ("tests/test_pages.py::test_an_expired_console_code_gives_nothing",),
    ),
    Mutation(
        "the page policy refuses GraphiQL's fonts",
        "app/edge/headers.py",
        """    " style-src 'self' 'unsafe-inline'; font-src 'self' data:; script-src 'self';\"""",
        """    " style-src 'self' 'unsafe-inline'; font-src 'self'; script-src 'self';\"""",
        ("tests/test_console.py::test_no_request_leaves_the_origin_and_graphiql_works_offline",),
    ),
    Mutation(
        "the dev banner's console link carries the token",
        "app/cli/dev.py",
        "        code = _console_code(redis_url, token, base.console_code_ttl_seconds)",
        "        code = token",
        ("tests/test_dev_stack.py",),
        fast=False,
    ),
    Mutation(
        "a spent sign-in link is taken for a credential",
        "app/console/static/console.js",
        '      if (!r.ok) return "This sign-in link was used already',
        '      if (false) return "This sign-in link was used already',
        (
            "tests/test_console.py::"
            "test_the_dev_banners_link_signs_in_once_and_leaves_no_token_in_history",
        ),
        fast=False,
    ),
    Mutation(
        "task submissions skip the column bounds",
        "app/services/tasks/submissions.py",
        "        check_objects([task])",
        "        pass",
        (
            "tests/test_safe_errors.py::test_a_task_field_longer_than_its_column_is_refused_naming_it",
        ),
    ),
    # --- the task core (issue 30) ---
    Mutation(
        "a completed task can be retried",
        "app/services/tasks/lifecycle.py",
        "    TaskStatus.COMPLETED: frozenset(),",
        "    TaskStatus.COMPLETED: frozenset({TaskStatus.QUEUED}),",
        ("tests/test_lifecycle.py::test_transient_failure_recovers_within_retries",),
    ),
    Mutation(
        "the worker's hot path publishes no task events",
        "app/services/tasks/attempt_writes.py",
        "    return Written(task, [effects.TaskChanged(task_snapshot(task))])",
        "    return Written(task, [])",
        (
            "tests/test_group_commit.py::"
            "test_a_workers_attempts_share_statements_and_events_keep_their_order",
        ),
        fast=False,
    ),
    Mutation(
        "a task's attempt budget is one short",
        "app/services/tasks/submissions.py",
        "            max_attempts=valid.max_retries + 1,",
        "            max_attempts=valid.max_retries,",
        ("tests/test_lifecycle.py::test_retries_then_dead_letter_with_errors_kept",),
    ),
    Mutation(
        "a workflow step runs once any of its dependencies completed",
        "app/services/workflows/scheduling.py",
        "        if not all(dep in done for dep in step.dependencies):",
        "        if step.dependencies and not any(dep in done for dep in step.dependencies):",
        ("tests/test_workflows.py::test_diamond_runs_branches_in_parallel_and_maps_results",),
        fast=False,
    ),
    Mutation(
        "a failed step does not fail its workflow",
        "app/services/workflows/engine.py",
        '            await fail(session, wf, steps, f"step {step.step_id!r} failed: '
        '{step.error_message}")',
        "            pass",
        ("tests/test_workflows.py::test_failure_cancels_downstream_then_retry_completes",),
        fast=False,
    ),
    Mutation(
        "low-priority LLM calls take the reserved slots",
        "app/services/llm/semaphore_scripts.py",
        "      admit = active < (max_concurrent - reserved) and",
        "      admit = active < max_concurrent and",
        ("tests/test_llm_queue.py::test_semaphore_bounds_calls_and_admits_high_first",),
        fast=False,
    ),
    Mutation(
        "the counters report no tenant as the empty string",
        "app/services/tasks/counters.py",
        "                tenant_id=t or None,",
        "                tenant_id=t,",
        ("tests/test_hardening.py::test_task_counters_equal_a_count_of_the_rows",),
    ),
    Mutation(
        "retry delays have no ceiling",
        "app/services/tasks/backoff.py",
        "        capped = min(raw, self.max_delay)",
        "        capped = raw",
        ("tests/test_units.py::test_backoff_follows_seed_002_defaults",),
    ),
    Mutation(
        "the unit of work skips the reactions",
        "app/edge/uow.py",
        "                await reactions.react(session)",
        "                pass",
        ("tests/test_workflows.py::test_diamond_runs_branches_in_parallel_and_maps_results",),
        fast=False,
    ),
    Mutation(
        "a due retry is not moved to the head of its queue",
        "app/platform/dispatch.py",
        "tonumber(due[i + 1]) - offset - head, due[i])",
        "tonumber(due[i + 1]) - offset, due[i])",
        ("tests/test_hardening.py::test_a_retry_runs_at_the_head_of_its_queue_after_its_backoff",),
    ),
    Mutation(
        "group commit writes the requests of callers that gave up",
        "app/platform/group_commit.py",
        "                batch = [(r, f) for r, f in batch if not f.done()]",
        "                batch = list(batch)",
        ("tests/test_group_commit.py::test_a_caller_cancelled_before_its_write_is_left_out",),
    ),
    Mutation(
        "an expired bearer token is accepted",
        "app/auth/tokens.py",
        '            options={"require": ["exp", "sub"]},',
        '            options={"require": ["exp", "sub"], "verify_exp": False},',
        ("tests/test_auth.py::test_no_or_bad_credentials_get_401",),
    ),
    # --- task types of users' own (issue 31) -----------------------------------------------
    Mutation(
        "a user's type is submitted without checking its input against the schema",
        "app/services/tasks/specs.py",
        "    resolved.check_input(spec.input)",
        "    pass",
        (f"{OWN_TYPES}::test_input_is_validated_in_the_api_naming_the_field",),
    ),
    Mutation(
        "a worker without the handler runs the task anyway (an attempt counted, failed)",
        "workers/runner.py",
        "    if task_type is not None and handler_for(task_type) is None:",
        "    if False:",
        (f"{OWN_TYPES}::test_a_worker_without_the_handler_hands_the_task_back",),
    ),
    Mutation(
        "ctx.llm.chat calls the provider without taking an LLM slot",
        "workers/authored.py",
        "        async with self._slot():\n            chat = await",
        "        async with asyncio.timeout(None):\n            chat = await",
        (f"{OWN_TYPES}::test_llm_calls_take_a_slot_and_are_counted_on_the_task",),
    ),
    Mutation(
        "a cancel is not told to the handler (only the abort after the grace)",
        "workers/main.py",
        "        running.cancel_requested()",
        "        pass",
        (f"{OWN_TYPES}::test_cancel_reaches_a_handler_that_watches_for_it",),
    ),
    Mutation(
        "a worker's registration does not reach the API processes until their copy is old",
        "app/edge/state.py",
        "            CATALOG.invalidate()",
        "            pass",
        (f"{OWN_TYPES}::test_a_rolling_deploy_shows_both_definitions_and_obeys_the_newest",),
    ),
    Mutation(
        "a handler's result is stored whatever its size",
        "workers/authored.py",
        "    if size > limit:",
        "    if False:",
        (f"{OWN_TYPES}::test_retries_fatal_errors_timeouts_and_result_bounds",),
    ),
    # --- time (issue 32) ----------------------------------------------------------------
    Mutation(
        "a delayed task is enqueued at once (Redis holds it before its time)",
        "app/services/tasks/submissions.py",
        "        if task.due_at is None:  # else the ticker enqueues it when it is due",
        "        if True:",
        (f"{TIME}::test_a_delayed_task_survives_a_flushed_redis_and_every_worker_killed",),
    ),
    Mutation(
        "the ticker enqueues a task before it is due",
        "app/services/tasks/due.py",
        "            Task.due_at <= func.now(),",
        "            Task.due_at <= func.now() + text(\"interval '1 hour'\"),",
        (f"{TIME}::test_a_delayed_task_survives_a_flushed_redis_and_every_worker_killed",),
    ),
    Mutation(
        "a task cancelled before its time still shows as waiting for it",
        "app/services/tasks/commands.py",
        "        task.due_at = None  # a task waiting for its time never runs",
        "        pass",
        (f"{TIME}::test_a_task_cancelled_before_its_time_never_runs",),
    ),
    Mutation(
        "a tick already fired is fired again",
        "app/services/schedules/commands.py",
        "        .on_conflict_do_nothing(constraint=UNIQUE_TICK)",
        '        .on_conflict_do_update(constraint=UNIQUE_TICK, set_={"manual": manual})',
        (f"{SCHEDULES}::test_a_tick_is_claimed_once",),
    ),
    Mutation(
        "catch-up ALL runs only the latest missed tick",
        "app/services/schedules/firing.py",
        "        fired, missed = late[-MAX_CATCH_UP:], late[:-MAX_CATCH_UP]",
        "        fired, missed = late[-1:], late[:-1]",
        (f"{SCHEDULES}::test_ticks_missed_while_no_worker_ran_follow_the_catch_up_policy",),
    ),
    Mutation(
        "overlap SKIP starts a run while the previous one is unfinished",
        "app/services/schedules/commands.py",
        "        if schedule.overlap == Overlap.SKIP:",
        "        if False:",
        (f"{SCHEDULES}::test_a_fire_while_the_previous_run_is_unfinished_is_skipped",),
    ),
    Mutation(
        "an approval is accepted from a viewer",
        "app/gql/workflows.py",
        """        permission_classes=[CanOperate],
        description="Approve a waiting APPROVAL step""",
        """        permission_classes=[CanRead],
        description="Approve a waiting APPROVAL step""",
        (f"{WAITING}::test_an_approval_survives_its_worker_and_runs_the_next_step_once",),
    ),
    Mutation(
        "a workflow's waiting step is left waiting when the workflow fails",
        "app/services/workflows/scheduling.py",
        "        waiting = step.status == StepStatus.RUNNING and step.kind != StepKind.TASK",
        "        waiting = False",
        (f"{WAITING}::test_a_rejection_fails_the_workflow_with_its_note",),
    ),
    Mutation(
        "a retried workflow's step keeps its old input",
        "app/services/workflows/retry.py",
        "            step.input = edited[step.step_id]",
        "            pass",
        (f"{TIME}::test_a_failed_workflow_is_retried_with_an_edited_step_input",),
    ),
    Mutation(
        "a DLQ requeue drops the edited input",
        "app/services/tasks/dlq.py",
        "            session=session, task_id=i, input=input, defaults=defaults, reason=reason",
        "            session=session, task_id=i, input=None, defaults=defaults, reason=reason",
        (f"{TIME}::test_a_dead_letter_is_requeued_with_an_edited_input",),
    ),
    # --- flow control (issue 33) -----------------------------------------------------------
    Mutation(
        "an idempotency key answers whatever request reuses it",
        "app/services/tasks/idempotency.py",
        "    if held.kind != claim.kind or held.fingerprint != claim.fingerprint:",
        "    if False:",
        (f"{IDEMPOTENCY}::test_the_same_key_answers_the_same_task_and_another_request_conflicts",),
    ),
    Mutation(
        "a keyed submission claims no key",
        "app/services/tasks/submissions.py",
        "    if spec.idempotency_key is None:\n        return None\n    claim",
        "    if True:\n        return None\n    claim",
        (f"{IDEMPOTENCY}::test_fifty_concurrent_identical_submits_leave_one_task",),
    ),
    Mutation(
        "a concurrency key's limit is not held",
        "workers/consumer.py",
        "        room = redis.call('zcard', held) < tonumber(string.sub(marker, 1, sep - 1))",
        "        room = true",
        (f"{CONCURRENCY}::test_a_key_runs_at_most_its_limit_across_workers",),
    ),
    Mutation(
        "a dead worker keeps its lease on a concurrency key",
        "app/platform/dispatch.py",
        "  redis.call('zrem', ARGV[1] .. string.sub(marker, sep + 1), ARGV[2])",
        "  redis.call('get', ARGV[1])",
        (f"{CONCURRENCY}::test_a_crashed_workers_hold_is_given_back",),
    ),
    Mutation(
        "a type's declared concurrency is ignored",
        "app/services/tasks/specs.py",
        "    if key is None and declared is not None:",
        "    if False:",
        (f"{CONCURRENCY}::test_a_type_declares_its_key_read_from_the_input",),
    ),
    Mutation(
        "racing submissions pass a tenant's queued cap together",
        "app/services/tasks/submissions.py",
        '            text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))"),',
        '            text("SELECT hashtextextended(:k, 0)"),',
        ("tests/test_queued_cap.py::test_a_tenant_is_refused_past_its_cap_and_no_race_passes_it",),
    ),
    Mutation(
        "a rate-limited type starts as many as it is given",
        "workers/consumer.py",
        "        room = redis.call('zcard', starts) < tonumber(string.sub(rate, 1, a - 1))",
        "        room = true",
        (f"{CONCURRENCY}::test_a_rate_limited_type_starts_at_most_its_rate_per_key",),
    ),
    Mutation(
        "a provider's 429 spends a retry",
        "workers/runner.py",
        "        if exc.rate_limited:",
        "        if False:",
        (
            "tests/test_openai_provider.py::"
            "test_a_rate_limited_call_waits_its_retry_after_and_spends_no_retry",
        ),
    ),
)
