// The tester's JMX client: ONE long-lived JVM per run, driven by support/metrics/jmx.py with JSON lines on
// stdin/stdout (one request per line, one answer per line, matched by "id"; answers may come out of order).
//
// It connects the way a Streams JMX client must: JMXConnectorFactory with
//   jmx.remote.protocol.provider.pkgs = com.ibm.streams.management  (service:jmx:jmxmp://host:9975)
//   jmx.remote.credentials            = {user, password}
//   jmx.remote.tls.socket.factory     = trust of the configured CA bundle (also installed as the default
//                                       SSLContext, for providers that use that)
//   jmx.remote.tls.enabled.protocols  = when configured
// The JMXMP provider is NOT part of the JDK: it comes from the classpath the tester passes (`jmx.classpath`):
// IBM's com.ibm.streams.management jar from the Streams install against a real instance, the lab's compiled
// stand-in (/run/xdc-lab/java) against the lab.
//
// Requests:
//   {"id":1,"op":"connect","conn":"dc1","url":...,"user":...,"password":...,"ca":path|null,
//    "tls_protocols":str|null,"timeout_ms":N}
//   {"id":2,"op":"read","conn":"dc1","queries":[{"pattern":ObjectName pattern,"attributes":[...]}]}
//       -> "beans": {objectName: {attribute: value}}   (attributes a bean lacks are left out; an empty
//          "attributes" list reads every readable attribute)
//   {"id":3,"op":"invoke","conn":"dc1","name":ObjectName,"operation":"registerJobById","args":["7"],
//    "signature":["java.lang.String"]}                 -> "result": value
//   {"id":4,"op":"close","conn":"dc1"}
// Answers: {"id":n,"ok":true,...} or {"id":n,"ok":false,"kind":"auth"|"io"|"timeout"|"error","error":"..."}.
// Requests of one connection run in order on its own thread; connections run in parallel. EOF on stdin ends
// the JVM. JDK only; compiled by the tester at first use into its cache directory.

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.lang.reflect.Array;
import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyStore;
import java.security.cert.Certificate;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import javax.management.Attribute;
import javax.management.AttributeList;
import javax.management.MBeanAttributeInfo;
import javax.management.MBeanServerConnection;
import javax.management.ObjectName;
import javax.management.openmbean.CompositeData;
import javax.management.openmbean.TabularData;
import javax.management.remote.JMXConnector;
import javax.management.remote.JMXConnectorFactory;
import javax.management.remote.JMXServiceURL;
import javax.net.ssl.SSLContext;
import javax.net.ssl.TrustManagerFactory;

public final class JmxBridge {
    static final String PROVIDER_PACKAGES = "com.ibm.streams.management";
    static final PrintStream OUT = new PrintStream(System.out, false, StandardCharsets.UTF_8);
    static final Map<String, Conn> CONNS = new ConcurrentHashMap<>();
    static final Map<String, X509Certificate> TRUSTED = new LinkedHashMap<>();

    static final class Conn {
        final ExecutorService worker;
        volatile JMXConnector connector;
        volatile MBeanServerConnection mbsc;

        Conn(String name) {
            worker = Executors.newSingleThreadExecutor(r -> {
                Thread t = new Thread(r, "jmx-bridge " + name);
                t.setDaemon(true);
                return t;
            });
        }
    }

    public static void main(String[] args) throws IOException {
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        String line;
        while ((line = in.readLine()) != null) {
            if (line.isBlank()) {
                continue;
            }
            Map<String, Object> req;
            try {
                req = map(Json.parse(line));
            } catch (RuntimeException e) {
                answer(error(null, "error", "bad request: " + e.getMessage()));
                continue;
            }
            String name = str(req.get("conn"));
            Conn conn = CONNS.computeIfAbsent(name, Conn::new);
            conn.worker.execute(() -> answer(handle(conn, req)));
        }
        for (Conn c : CONNS.values()) {
            close(c);
        }
        System.exit(0);
    }

    static Map<String, Object> handle(Conn conn, Map<String, Object> req) {
        Object id = req.get("id");
        try {
            Map<String, Object> ok = new LinkedHashMap<>();
            ok.put("id", id);
            ok.put("ok", true);
            switch (str(req.get("op"))) {
                case "connect":
                    connect(conn, req);
                    break;
                case "read":
                    ok.put("beans", read(connection(conn), list(req.get("queries"))));
                    break;
                case "invoke":
                    ok.put("result", invoke(connection(conn), req));
                    break;
                case "close":
                    close(conn);
                    break;
                default:
                    return error(id, "error", "unknown op " + req.get("op"));
            }
            return ok;
        } catch (SecurityException e) {
            return error(id, "auth", "credentials refused: " + e.getMessage());
        } catch (IOException e) {
            close(conn); // a broken or timed-out connection is rebuilt by the next connect
            String text = String.valueOf(e.getMessage());
            return error(id, text.contains("no answer within") ? "timeout" : "io", e.getClass().getSimpleName() + ": " + text);
        } catch (Exception e) {
            Throwable cause = e;
            while (cause.getCause() != null && cause != cause.getCause()) {
                cause = cause.getCause();
            }
            return error(id, "error", e.getClass().getSimpleName() + ": " + e.getMessage()
                + (cause != e ? " (" + cause.getClass().getSimpleName() + ": " + cause.getMessage() + ")" : ""));
        }
    }

    static MBeanServerConnection connection(Conn conn) throws IOException {
        MBeanServerConnection m = conn.mbsc;
        if (m == null) {
            throw new IOException("not connected");
        }
        return m;
    }

    static void connect(Conn conn, Map<String, Object> req) throws Exception {
        close(conn);
        Map<String, Object> env = new HashMap<>();
        env.put(JMXConnectorFactory.PROTOCOL_PROVIDER_PACKAGES, PROVIDER_PACKAGES);
        env.put(JMXConnectorFactory.PROTOCOL_PROVIDER_CLASS_LOADER, JmxBridge.class.getClassLoader());
        if (req.get("user") != null) {
            env.put(JMXConnector.CREDENTIALS, new String[] {str(req.get("user")), str(req.get("password"))});
        }
        long timeout = req.get("timeout_ms") == null ? 5000 : num(req.get("timeout_ms"));
        env.put("jmx.remote.x.request.waiting.timeout", timeout);
        if (req.get("tls_protocols") != null) {
            env.put("jmx.remote.tls.enabled.protocols", str(req.get("tls_protocols")));
        }
        if (req.get("ca") != null) {
            SSLContext ctx = trusting(List.of(Path.of(str(req.get("ca")))));
            env.put("jmx.remote.tls.socket.factory", ctx.getSocketFactory());
            synchronized (TRUSTED) {
                SSLContext.setDefault(trustingAll(Path.of(str(req.get("ca")))));
            }
        }
        JMXConnector c = JMXConnectorFactory.connect(new JMXServiceURL(str(req.get("url"))), env);
        conn.connector = c;
        conn.mbsc = c.getMBeanServerConnection();
    }

    static void close(Conn conn) {
        JMXConnector c = conn.connector;
        conn.connector = null;
        conn.mbsc = null;
        if (c != null) {
            try {
                c.close();
            } catch (IOException ignored) {
                // gone anyway
            }
        }
    }

    static Map<String, Object> read(MBeanServerConnection m, List<Object> queries) throws Exception {
        Map<String, Object> beans = new LinkedHashMap<>();
        for (Object q : queries) {
            Map<String, Object> query = map(q);
            List<Object> attrs = list(query.get("attributes"));
            String[] names = new String[attrs.size()];
            for (int i = 0; i < names.length; i++) {
                names[i] = str(attrs.get(i));
            }
            for (ObjectName name : m.queryNames(new ObjectName(str(query.get("pattern"))), null)) {
                AttributeList got;
                try {
                    String[] wanted = names;
                    if (wanted.length == 0) { // no list: every readable attribute of the bean
                        List<String> all = new ArrayList<>();
                        for (MBeanAttributeInfo info : m.getMBeanInfo(name).getAttributes()) {
                            if (info.isReadable()) {
                                all.add(info.getName());
                            }
                        }
                        wanted = all.toArray(new String[0]);
                    }
                    got = m.getAttributes(name, wanted);
                } catch (javax.management.InstanceNotFoundException gone) {
                    continue; // dropped between query and read
                }
                @SuppressWarnings("unchecked")
                Map<String, Object> values = (Map<String, Object>) beans.computeIfAbsent(name.toString(), k -> new LinkedHashMap<>());
                for (Attribute a : got.asList()) {
                    values.put(a.getName(), json(a.getValue()));
                }
            }
        }
        return beans;
    }

    static Object invoke(MBeanServerConnection m, Map<String, Object> req) throws Exception {
        List<Object> args = list(req.get("args"));
        List<Object> sig = list(req.get("signature"));
        Object[] params = new Object[args.size()];
        String[] signature = new String[sig.size()];
        for (int i = 0; i < params.length; i++) {
            signature[i] = str(sig.get(i));
            params[i] = convert(args.get(i), signature[i]);
        }
        return json(m.invoke(new ObjectName(str(req.get("name"))), str(req.get("operation")), params, signature));
    }

    static Object convert(Object v, String type) {
        switch (type) {
            case "java.lang.String": return v == null ? null : String.valueOf(v);
            case "java.math.BigInteger": return new BigInteger(String.valueOf(v));
            case "long": case "java.lang.Long": return num(v);
            case "int": case "java.lang.Integer": return (int) num(v);
            case "boolean": case "java.lang.Boolean": return Boolean.valueOf(String.valueOf(v));
            default: return v;
        }
    }

    /** An attribute value as JSON: numbers, booleans, strings (enums by name), collections and composites. */
    static Object json(Object v) {
        if (v == null || v instanceof Boolean || v instanceof String) {
            return v;
        }
        if (v instanceof Number) {
            return v instanceof BigInteger ? v.toString() : v;
        }
        if (v instanceof Enum) {
            return ((Enum<?>) v).name();
        }
        if (v instanceof Collection) {
            List<Object> out = new ArrayList<>();
            for (Object o : (Collection<?>) v) {
                out.add(json(o));
            }
            return out;
        }
        if (v.getClass().isArray()) {
            List<Object> out = new ArrayList<>();
            for (int i = 0; i < Array.getLength(v); i++) {
                out.add(json(Array.get(v, i)));
            }
            return out;
        }
        if (v instanceof CompositeData) {
            CompositeData cd = (CompositeData) v;
            Map<String, Object> out = new LinkedHashMap<>();
            for (String k : cd.getCompositeType().keySet()) {
                out.put(k, json(cd.get(k)));
            }
            return out;
        }
        if (v instanceof TabularData) {
            return json(((TabularData) v).values());
        }
        return String.valueOf(v);
    }

    static SSLContext trusting(List<Path> bundles) throws Exception {
        List<X509Certificate> all = new ArrayList<>();
        for (Path bundle : bundles) {
            all.addAll(certificates(bundle));
        }
        return context(all);
    }

    /** A TLS context that trusts exactly these certificates. */
    static SSLContext context(Iterable<X509Certificate> cas) throws Exception {
        KeyStore ks = KeyStore.getInstance(KeyStore.getDefaultType());
        ks.load(null, null);
        int i = 0;
        for (X509Certificate c : cas) {
            ks.setCertificateEntry("ca-" + i++, c);
        }
        TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
        tmf.init(ks);
        SSLContext ctx = SSLContext.getInstance("TLS");
        ctx.init(null, tmf.getTrustManagers(), null);
        return ctx;
    }

    /** The default SSLContext trusts every CA bundle seen so far (one JVM serves every data center). */
    static SSLContext trustingAll(Path bundle) throws Exception {
        for (X509Certificate c : certificates(bundle)) {
            TRUSTED.put(c.getSubjectX500Principal() + "/" + c.getSerialNumber(), c);
        }
        return context(TRUSTED.values());
    }

    static List<X509Certificate> certificates(Path bundle) throws Exception {
        List<X509Certificate> out = new ArrayList<>();
        try (InputStream in = Files.newInputStream(bundle)) {
            for (Certificate c : CertificateFactory.getInstance("X.509").generateCertificates(in)) {
                out.add((X509Certificate) c);
            }
        }
        return out;
    }

    static Map<String, Object> error(Object id, String kind, String message) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("id", id);
        m.put("ok", false);
        m.put("kind", kind);
        m.put("error", message);
        return m;
    }

    static void answer(Map<String, Object> m) {
        String line = Json.write(m);
        synchronized (OUT) {
            OUT.println(line);
            OUT.flush();
        }
    }

    static String str(Object o) {
        return o == null ? "" : String.valueOf(o);
    }

    static long num(Object o) {
        if (o instanceof Number) {
            return ((Number) o).longValue();
        }
        return Long.parseLong(String.valueOf(o));
    }

    @SuppressWarnings("unchecked")
    static Map<String, Object> map(Object o) {
        if (!(o instanceof Map)) {
            throw new IllegalStateException("expected a JSON object");
        }
        return (Map<String, Object>) o;
    }

    @SuppressWarnings("unchecked")
    static List<Object> list(Object o) {
        return o instanceof List ? (List<Object>) o : new ArrayList<>();
    }

    /** Minimal JSON reader (RFC 8259): objects, arrays, strings, numbers (Long or Double), true/false/null. */
    static final class Json {
        private final String s;
        private int i;

        private Json(String s) {
            this.s = s;
        }

        static Object parse(String text) {
            Json j = new Json(text);
            Object v = j.value();
            j.ws();
            if (j.i != j.s.length()) {
                throw j.error("trailing characters");
            }
            return v;
        }

        private IllegalStateException error(String what) {
            return new IllegalStateException("JSON: " + what + " at offset " + i);
        }

        private void ws() {
            while (i < s.length() && " \t\r\n".indexOf(s.charAt(i)) >= 0) {
                i++;
            }
        }

        private Object value() {
            ws();
            if (i >= s.length()) {
                throw error("unexpected end");
            }
            char c = s.charAt(i);
            switch (c) {
                case '{': return object();
                case '[': return array();
                case '"': return string();
                case 't': return literal("true", Boolean.TRUE);
                case 'f': return literal("false", Boolean.FALSE);
                case 'n': return literal("null", null);
                default: return number();
            }
        }

        private Object literal(String word, Object v) {
            if (!s.startsWith(word, i)) {
                throw error("bad literal");
            }
            i += word.length();
            return v;
        }

        private Map<String, Object> object() {
            Map<String, Object> m = new LinkedHashMap<>();
            i++;
            ws();
            if (i < s.length() && s.charAt(i) == '}') {
                i++;
                return m;
            }
            while (true) {
                ws();
                if (i >= s.length() || s.charAt(i) != '"') {
                    throw error("expected a key");
                }
                String k = string();
                ws();
                if (i >= s.length() || s.charAt(i) != ':') {
                    throw error("expected ':'");
                }
                i++;
                m.put(k, value());
                ws();
                if (i < s.length() && s.charAt(i) == ',') {
                    i++;
                } else if (i < s.length() && s.charAt(i) == '}') {
                    i++;
                    return m;
                } else {
                    throw error("expected ',' or '}'");
                }
            }
        }

        private List<Object> array() {
            List<Object> l = new ArrayList<>();
            i++;
            ws();
            if (i < s.length() && s.charAt(i) == ']') {
                i++;
                return l;
            }
            while (true) {
                l.add(value());
                ws();
                if (i < s.length() && s.charAt(i) == ',') {
                    i++;
                } else if (i < s.length() && s.charAt(i) == ']') {
                    i++;
                    return l;
                } else {
                    throw error("expected ',' or ']'");
                }
            }
        }

        private String string() {
            StringBuilder b = new StringBuilder();
            i++;
            while (i < s.length()) {
                char c = s.charAt(i++);
                if (c == '"') {
                    return b.toString();
                }
                if (c != '\\') {
                    b.append(c);
                    continue;
                }
                if (i >= s.length()) {
                    break;
                }
                char e = s.charAt(i++);
                switch (e) {
                    case 'b': b.append('\b'); break;
                    case 'f': b.append('\f'); break;
                    case 'n': b.append('\n'); break;
                    case 'r': b.append('\r'); break;
                    case 't': b.append('\t'); break;
                    case 'u':
                        if (i + 4 > s.length()) {
                            throw error("bad \\u escape");
                        }
                        b.append((char) Integer.parseInt(s.substring(i, i + 4), 16));
                        i += 4;
                        break;
                    default: b.append(e);
                }
            }
            throw error("unterminated string");
        }

        private Object number() {
            int start = i;
            while (i < s.length() && "+-0123456789.eE".indexOf(s.charAt(i)) >= 0) {
                i++;
            }
            String t = s.substring(start, i);
            if (t.isEmpty()) {
                throw error("unexpected character");
            }
            if (t.indexOf('.') < 0 && t.indexOf('e') < 0 && t.indexOf('E') < 0) {
                try {
                    return Long.parseLong(t);
                } catch (NumberFormatException ignored) {
                    return new BigInteger(t);
                }
            }
            return Double.parseDouble(t);
        }

        /** JSON text of maps, lists, strings, numbers, booleans and null. */
        static String write(Object v) {
            StringBuilder b = new StringBuilder();
            write(b, v);
            return b.toString();
        }

        private static void write(StringBuilder b, Object v) {
            if (v == null) {
                b.append("null");
            } else if (v instanceof Boolean) {
                b.append(v);
            } else if (v instanceof Number) {
                double d = ((Number) v).doubleValue();
                b.append(Double.isFinite(d) ? String.valueOf(v) : "null");
            } else if (v instanceof Map) {
                b.append('{');
                boolean first = true;
                for (Map.Entry<?, ?> e : ((Map<?, ?>) v).entrySet()) {
                    if (!first) {
                        b.append(',');
                    }
                    first = false;
                    quote(b, String.valueOf(e.getKey()));
                    b.append(':');
                    write(b, e.getValue());
                }
                b.append('}');
            } else if (v instanceof List) {
                b.append('[');
                boolean first = true;
                for (Object o : (List<?>) v) {
                    if (!first) {
                        b.append(',');
                    }
                    first = false;
                    write(b, o);
                }
                b.append(']');
            } else {
                quote(b, String.valueOf(v));
            }
        }

        private static void quote(StringBuilder b, String s) {
            b.append('"');
            for (int k = 0; k < s.length(); k++) {
                char c = s.charAt(k);
                switch (c) {
                    case '"': b.append("\\\""); break;
                    case '\\': b.append("\\\\"); break;
                    case '\n': b.append("\\n"); break;
                    case '\r': b.append("\\r"); break;
                    case '\t': b.append("\\t"); break;
                    default:
                        if (c < 0x20) {
                            b.append(String.format("\\u%04x", (int) c));
                        } else {
                            b.append(c);
                        }
                }
            }
            b.append('"');
        }
    }
}
