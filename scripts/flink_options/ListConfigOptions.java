import java.lang.reflect.*;
import org.apache.flink.configuration.*;
/** Prints every ConfigOption of the given classes: key, deprecated?, default, fallback keys (tab-separated). */
public class ListConfigOptions {
  public static void main(String[] a) throws Exception {
    for (String cn : a) {
      Class<?> c;
      try { c = Class.forName(cn); } catch (Throwable t) { System.out.println("#missing " + cn); continue; }
      for (Field f : c.getFields()) {
        if (!Modifier.isStatic(f.getModifiers()) || !ConfigOption.class.isAssignableFrom(f.getType())) continue;
        ConfigOption<?> o = (ConfigOption<?>) f.get(null);
        StringBuilder sb = new StringBuilder();
        for (FallbackKey k : o.fallbackKeys()) sb.append(k.getKey()).append(k.isDeprecated() ? "(deprecated)" : "(fallback)").append(' ');
        boolean dep = f.isAnnotationPresent(Deprecated.class);
        System.out.println(o.key() + "\t" + (dep ? "DEPRECATED" : "") + "\t" + o.defaultValue() + "\t" + sb.toString().trim());
      }
    }
  }
}
