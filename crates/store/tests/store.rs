//! The store's integration suite: every test runs once on SQLite and once on PostgreSQL (when
//! `CERTCTL_TEST_POSTGRES_URL` names a server), each on a database of its own.

#[path = "store/acme_nonces.rs"]
mod acme_nonces;
#[path = "store/api_keys.rs"]
mod api_keys;
#[path = "store/audit.rs"]
mod audit;
#[path = "store/certificates.rs"]
mod certificates;
#[path = "store/digest.rs"]
mod digest;
#[path = "store/inventory_audit.rs"]
mod inventory_audit;
#[path = "store/issuance.rs"]
mod issuance;
#[path = "store/notifications.rs"]
mod notifications;
#[path = "store/organization.rs"]
mod organization;
#[path = "store/paging.rs"]
mod paging;
#[path = "store/restart.rs"]
mod restart;
#[path = "store/support.rs"]
mod support;

/// Instantiates each listed test once per backend, as `<backend>::<test>`.
///
/// `async` tests take `&TestDb` and get a fresh database (skipped when the backend is not
/// available); `sync` tests take the `Backend` and manage databases themselves.
macro_rules! backend_tests {
    (backends: [$($backend:ident: $kind:expr),+ $(,)?], async: $async:tt, sync: $sync:tt $(,)?) => {
        $( backend_tests!(@module $backend, $kind, $async, $sync); )+
    };
    (@module $backend:ident, $kind:expr, [$($am:ident::$af:ident),* $(,)?], [$($sm:ident::$sf:ident),* $(,)?]) => {
        mod $backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $af() {
                    let Some(db) = certctl_store::testing::TestDb::new($kind).await else { return };
                    crate::$am::$af(&db).await;
                    db.cleanup().await;
                }
            )*
            $(
                #[test]
                fn $sf() {
                    crate::$sm::$sf($kind);
                }
            )*
        }
    };
}

backend_tests! {
    backends: [sqlite: certctl_store::Backend::Sqlite, postgres: certctl_store::Backend::Postgres],
    async: [
        organization::team_crud,
        acme_nonces::nonce_batches_spend_each_nonce_once,
        acme_nonces::large_nonce_batches_span_statements,
        organization::team_duplicates_conflict,
        organization::team_unknown_id_is_not_found,
        organization::owner_crud,
        organization::owner_unknown_team_is_invalid_reference,
        organization::referenced_team_cannot_be_deleted,
        organization::times_keep_microseconds,
        api_keys::api_key_lifecycle,
        api_keys::api_key_duplicates_conflict,
        api_keys::web_sessions_expire_end_and_die_with_their_key,
        audit::every_mutation_writes_one_audit_row,
        audit::failed_mutations_write_no_audit_row,
        audit::database_rejects_update_and_delete_of_audit_rows,
        audit::chain_verifies_after_many_appends,
        audit::concurrent_appends_keep_one_chain,
        audit::altered_row_is_detected,
        audit::rehashed_row_is_detected_at_the_next_link,
        audit::deleted_row_is_detected,
        audit::audit_list_filters_and_lookup,
        paging::page_mode_reports_totals,
        paging::cursor_mode_walks_every_row,
        paging::cursor_mode_breaks_ties_by_id,
        paging::bad_cursor_is_invalid,
        restart::data_survives_reconnect,
        certificates::certificate_list_filters_and_keyset_paging,
        certificates::certificate_agent_filter,
        inventory_audit::inventory_mutations_write_one_audit_row,
        inventory_audit::refused_inventory_mutations_write_no_audit_row,
        issuance::issuance_renewal_request_opens_one_job,
        issuance::claim_takes_due_issuance_jobs,
        issuance::approval_moves_a_job_on_or_ends_it,
        issuance::issuance_claim_respects_the_limit,
        issuance::issuance_concurrent_claimers_never_share_a_job,
        issuance::issuance_transition_moves_only_from_the_expected_state,
        issuance::issuance_completion_records_the_version_and_fans_out_deployments,
        issuance::issuance_completion_batches_answer_each_request,
        issuance::issuance_failed_attempts_retry_then_exhaust,
        issuance::issuance_overdue_jobs_follow_their_own_clocks,
        issuance::issuance_renewal_scan_opens_due_work,
        issuance::issuance_renewal_scan_handles_a_large_inventory,
        issuance::issuance_acme_windows_accounts_and_external_revocation,
        issuance::issuance_ca_hierarchy_and_states,
        issuance::issuance_crl_numbers_and_ocsp_responder,
        issuance::issuance_revocation_updates_certificate_jobs_and_lookups,
        issuance::issuance_issued_serials_and_serial_status,
        notifications::notification_enqueue_dedups_in_the_callers_transaction,
        notifications::notification_retry_ladder_reaches_dead_then_requeue,
        notifications::notification_lost_lease_changes_nothing,
        notifications::notification_batch_sent_respects_each_lease,
        notifications::notification_unconfigured_channel_goes_dead,
        notifications::notification_concurrent_claimers_never_share_a_row,
        notifications::notification_list_filters_and_pages,
        digest::digest_counts_the_window_by_status,
    ],
    sync: [
        paging::cursor_walk_during_inserts_sees_every_row_once,
        certificates::certificate_walk_during_inserts_sees_every_row_once,
        notifications::notification_state_machine_invariants,
    ],
}
