// The shape of prices.json: dated us-east-1 list prices, each group with its source page.
export interface Prices {
  region: string;
  as_of: string;
  recheck: string;
  hours_per_month: number;
  kinesis: {
    shard_hour: number;
    put_payload_units_per_million: number;
    put_payload_unit_bytes: number;
    extended_retention_shard_hour: number;
    efo_consumer_shard_hour: number;
    efo_retrieval_per_gb: number;
    on_demand_stream_hour: number;
    on_demand_ingest_per_gb: number;
    on_demand_retrieval_per_gb: number;
    on_demand_efo_retrieval_per_gb: number;
    on_demand_extended_retention_per_gb_month: number;
  };
  dynamodb: { write_request_units_per_million: number; read_request_units_per_million: number; storage_gb_month: number; pitr_gb_month: number; provisioned_wcu_hour: number; provisioned_rcu_hour: number; provisioned_target_utilization: number };
  iot_core: {
    connection_minutes_per_million: number;
    message_unit_bytes: number;
    message_tiers: { up_to_millions: number | null; per_million: number }[];
    rules_triggered_per_million: number;
    rule_actions_per_million: number;
  };
  lambda: { requests_per_million: number; gb_second: number };
  firehose: { direct_put_per_gb: number; record_unit_bytes: number; snowflake_per_gb: number };
  s3: { standard_gb_month_first_50tb: number; standard_gb_month_next_450tb: number; standard_gb_month_over_500tb: number; put_per_thousand: number; get_per_thousand: number };
  kms: { key_month: number; requests_per_10k: number };
  ec2: { node_type: string; node_vcpus: number; node_hour: number; broker_node_type: string; broker_node_vcpus: number; broker_node_memory_gib: number; broker_node_hour: number };
  nlb: { hour: number; nlcu_hour: number; nlcu_tls_active_connections: number; nlcu_tls_new_connections_per_s: number; nlcu_gb_per_hour: number };
  /** Between availability zones, both directions together (each side is billed). */
  data_transfer_inter_az_per_gb: number;
  data_transfer_out: { tiers: { up_to_tb: number | null; per_gb: number }[] };
  cloudwatch: { metric_month: number; alarm_month: number; dashboard_month: number; logs_ingest_per_gb: number; logs_storage_gb_month: number };
  snowflake: { credit_usd: number; storage_tb_month: number; warehouse_credits_per_hour: Record<string, number> };
}
