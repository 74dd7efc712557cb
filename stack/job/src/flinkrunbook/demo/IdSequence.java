package flinkrunbook.demo;

import org.apache.flink.api.common.eventtime.WatermarkStrategy;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.api.connector.source.util.ratelimit.RateLimiterStrategy;
import org.apache.flink.connector.datagen.source.DataGeneratorSource;
import org.apache.flink.connector.datagen.source.GeneratorFunction;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;

/**
 * The rows "id,generated_at_ms" for ids 1, 2, 3, ... at a fixed rate, from Flink's DataGeneratorSource
 * (in the distribution from Flink 1.19 on; stack/job/src-1.18/ holds the same for 1.18). The source's
 * position is part of every checkpoint.
 */
final class IdSequence {

    private IdSequence() {}

    static DataStream<String> rows(StreamExecutionEnvironment env, long count, double rate) {
        GeneratorFunction<Long, String> nextRow =
                index -> (index + 1) + "," + System.currentTimeMillis();
        DataGeneratorSource<String> ids =
                new DataGeneratorSource<>(
                        nextRow, count, RateLimiterStrategy.perSecond(rate), Types.STRING);
        return env.fromSource(ids, WatermarkStrategy.noWatermarks(), "id-sequence")
                .uid("id-sequence")
                .setParallelism(1);
    }
}
