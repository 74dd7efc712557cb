package flinkrunbook.demo;

import org.apache.flink.api.common.eventtime.WatermarkStrategy;
import org.apache.flink.api.common.functions.MapFunction;
import org.apache.flink.api.connector.source.lib.NumberSequenceSource;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;

/**
 * The rows "id,generated_at_ms" for ids 1, 2, 3, ... at a fixed rate, on Flink 1.18, whose distribution
 * has no DataGeneratorSource (flink-connector-datagen ships separately there): flink-core's
 * NumberSequenceSource, whose position is part of every checkpoint, throttled by the map chained to it.
 * Chained, no buffer holds ids between the two, so a checkpoint barrier never waits behind a backlog.
 */
final class IdSequence {

    private IdSequence() {}

    static DataStream<String> rows(StreamExecutionEnvironment env, long count, double rate) {
        return env.fromSource(
                        new NumberSequenceSource(1, count),
                        WatermarkStrategy.noWatermarks(),
                        "id-sequence")
                .uid("id-sequence")
                .setParallelism(1)
                .map(new Throttle(rate))
                .uid("id-rows")
                .setParallelism(1);
    }

    /** Emits at most `rate` rows a second, as DataGeneratorSource's RateLimiterStrategy does. */
    private static final class Throttle implements MapFunction<Long, String> {
        private final long intervalNanos;
        private transient long nextDue;

        Throttle(double rate) {
            this.intervalNanos = (long) (1_000_000_000L / rate);
        }

        @Override
        public String map(Long id) throws Exception {
            long now = System.nanoTime();
            if (nextDue == 0) {
                nextDue = now;
            }
            if (nextDue > now) {
                long waitNanos = nextDue - now;
                Thread.sleep(waitNanos / 1_000_000L, (int) (waitNanos % 1_000_000L));
            }
            nextDue = Math.max(nextDue, now) + intervalNanos;
            return id + "," + System.currentTimeMillis();
        }
    }
}
