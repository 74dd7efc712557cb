package flinkrunbook.demo;

import org.apache.flink.api.common.serialization.SimpleStringEncoder;
import org.apache.flink.connector.file.sink.FileSink;
import org.apache.flink.core.fs.Path;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.streaming.api.functions.sink.filesystem.OutputFileConfig;
import org.apache.flink.streaming.api.functions.sink.filesystem.bucketassigners.BasePathBucketAssigner;
import org.apache.flink.streaming.api.functions.sink.filesystem.rollingpolicies.OnCheckpointRollingPolicy;

import java.util.HashMap;
import java.util.Map;

/**
 * Stand-in for the runbook's Oracle-CDC-to-CSV job: emits ids 1, 2, 3, ... at a fixed rate and
 * writes them as CSV lines "id,generated_at_ms" through the exactly-once file sink.
 *
 * <p>The generator's position is part of every checkpoint and the file sink only publishes a part
 * file when the checkpoint that covers it completes, so a job restored from a retained checkpoint
 * continues the sequence with no gap and no duplicate in the published files.
 *
 * <p>Arguments: --output DIR (required), --rate IDS_PER_SECOND (default 20),
 * --name JOB_NAME (default realtime-cdc-demo), --checkpoint-interval MS (default 2000),
 * --count MAX_IDS (default Long.MAX_VALUE).
 */
public final class SequenceToCsvJob {

    public static void main(String[] args) throws Exception {
        Map<String, String> options = parse(args);
        String output = required(options, "output");
        double rate = Double.parseDouble(options.getOrDefault("rate", "20"));
        String name = options.getOrDefault("name", "realtime-cdc-demo");
        long checkpointInterval = Long.parseLong(options.getOrDefault("checkpoint-interval", "2000"));
        long count = Long.parseLong(options.getOrDefault("count", String.valueOf(Long.MAX_VALUE)));

        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment();
        // Exactly-once is the default mode; retention of checkpoints comes from the cluster config.
        env.enableCheckpointing(checkpointInterval);

        FileSink<String> csv =
                FileSink.forRowFormat(new Path(output), new SimpleStringEncoder<String>("UTF-8"))
                        .withBucketAssigner(new BasePathBucketAssigner<>())
                        .withRollingPolicy(OnCheckpointRollingPolicy.build())
                        .withOutputFileConfig(
                                OutputFileConfig.builder()
                                        .withPartPrefix("ids")
                                        .withPartSuffix(".csv")
                                        .build())
                        .build();

        // Stable uids so a resubmitted job maps the checkpointed state back to its operators.
        IdSequence.rows(env, count, rate)
                .sinkTo(csv)
                .uid("csv-sink")
                .name("csv-sink")
                .setParallelism(1);

        env.execute(name);
    }

    private static Map<String, String> parse(String[] args) {
        Map<String, String> options = new HashMap<>();
        for (int i = 0; i < args.length; i++) {
            if (!args[i].startsWith("--") || i + 1 >= args.length) {
                throw new IllegalArgumentException("expected --key value pairs, got: " + args[i]);
            }
            options.put(args[i].substring(2), args[++i]);
        }
        return options;
    }

    private static String required(Map<String, String> options, String key) {
        String value = options.get(key);
        if (value == null || value.isEmpty()) {
            throw new IllegalArgumentException("missing required argument --" + key);
        }
        return value;
    }
}
