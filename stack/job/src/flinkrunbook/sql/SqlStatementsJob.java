package flinkrunbook.sql;

import org.apache.flink.table.api.EnvironmentSettings;
import org.apache.flink.table.api.TableEnvironment;

import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Runs a Flink SQL job's statements, submitted like any jar (POST /jars/:id/run): the JobManager gives it
 * the run's job id and restore point (jobId, savepointPath), so a SQL job is recovered by the same rules as
 * a jar job. flink-runbook splits and checks the statements file (flink_runbook/flink/sql_statements.py).
 *
 * <p>Arguments: --name JOB_NAME (pipeline.name: how the runbook finds the job), then --statement SQL for
 * each statement in order. SET 'key' = 'value' sets an option of the job (TableEnvironment.executeSql does
 * not take SET); every other statement goes to executeSql, the INSERT or EXECUTE STATEMENT SET that makes
 * the streaming job last.
 */
public final class SqlStatementsJob {

    private static final Pattern SET =
            Pattern.compile("SET\\s+'([^']+)'\\s*=\\s*'([^']*)'", Pattern.CASE_INSENSITIVE | Pattern.DOTALL);

    public static void main(String[] args) {
        String name = null;
        List<String> statements = new ArrayList<>();
        for (int i = 0; i < args.length; i += 2) {
            if (i + 1 >= args.length) {
                throw new IllegalArgumentException("expected --name NAME and --statement SQL pairs");
            }
            if (args[i].equals("--name")) {
                name = args[i + 1];
            } else if (args[i].equals("--statement")) {
                statements.add(args[i + 1]);
            } else {
                throw new IllegalArgumentException("unknown argument " + args[i]);
            }
        }
        if (name == null) {
            throw new IllegalArgumentException("--name is required");
        }
        TableEnvironment tables = TableEnvironment.create(EnvironmentSettings.inStreamingMode());
        tables.getConfig().set("pipeline.name", name);
        for (String statement : statements) {
            Matcher set = SET.matcher(statement.trim());
            if (set.matches()) {
                tables.getConfig().set(set.group(1), set.group(2));
            } else {
                tables.executeSql(statement);
            }
        }
    }

    private SqlStatementsJob() {}
}
