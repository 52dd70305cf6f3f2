// The embedded lab's JMX server of one Teracloud Streams instance (one JVM per DC).
//
// Serves the `com.ibm.streams.management` MXBeans of the instance, its jobs and PEs as real Streams does:
// over JMXMP (`service:jmx:jmxmp://<dc host>:9975`, provider package `com.ibm.streams.management`, here the
// lab's stand-in in com/ibm/streams/management/jmxmp/), TLS with the DC's certificate, and the lab user's
// credentials (`jmx.remote.credentials`). No RMI connector is started.
//
// The instance bean is always registered. Job beans (and the PE beans of the job) exist only after a client
// calls InstanceMXBean.registerJobById(id) or registerAllJobs(), and a registered job whose job and PE beans
// are not read for `inactivityMillis` is unregistered again: the instance bean emits
// com.ibm.streams.management.object.inactivity.warning at half that time and ...object.inactivity.unregister
// when it drops the beans (userData: the job id as BigInteger).
//
// The model is kept in sync with the instance's REST management API, polled every ~500 ms (HTTPS verified
// against the lab CA, Basic auth). The instance bean emits com.ibm.streams.management.job.{added,removed,changed}
// and .pe.{added,removed,changed} for every job / PE, registered or not (userData: the id as BigInteger).
//
// Object names (Streams 5.x form, kept by Teracloud):
//   com.ibm.streams.management:type=instance,name="<instance>"
//   com.ibm.streams.management:type=instance.job,instance="<instance>",id=<job id>
//   com.ibm.streams.management:type=instance.pe,instance="<instance>",id=<pe id>
// Enum-typed attributes (Status, Health, StatusReason) travel as the enum constant name (MXBean mapping),
// e.g. RUNNING, PARTIALLY_HEALTHY, CRASH.
//
// Usage: java -cp <dir> StreamsJmx <instanceId> <restBase> <caPem> <passwordFile> <user> <pollMillis>
//            <jmxServiceUrl> <tlsCertPem> <tlsKeyPem> <inactivityMillis>
// JDK only (java.net.http, javax.management); compiled by `lab up` with javac.

import java.io.IOException;
import java.io.InputStream;
import java.lang.management.ManagementFactory;
import java.math.BigInteger;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyFactory;
import java.security.KeyStore;
import java.security.MessageDigest;
import java.security.PrivateKey;
import java.security.cert.Certificate;
import java.security.cert.CertificateFactory;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Collections;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.security.spec.PKCS8EncodedKeySpec;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;
import javax.management.AttributeList;
import javax.management.AttributeNotFoundException;
import javax.management.MBeanException;
import javax.management.MBeanNotificationInfo;
import javax.management.MBeanServer;
import javax.management.Notification;
import javax.management.NotificationBroadcasterSupport;
import javax.management.NotCompliantMBeanException;
import javax.management.ObjectName;
import javax.management.ReflectionException;
import javax.management.StandardMBean;
import javax.management.remote.JMXAuthenticator;
import javax.management.remote.JMXConnectorServer;
import javax.management.remote.JMXConnectorServerFactory;
import javax.management.remote.JMXPrincipal;
import javax.management.remote.JMXServiceURL;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;
import javax.security.auth.Subject;
import javax.net.ssl.TrustManagerFactory;

public final class StreamsJmx {
    static final String DOMAIN = "com.ibm.streams.management";
    static final String JOB_ADDED = DOMAIN + ".job.added";
    static final String JOB_REMOVED = DOMAIN + ".job.removed";
    static final String JOB_CHANGED = DOMAIN + ".job.changed";
    static final String PE_ADDED = DOMAIN + ".pe.added";
    static final String PE_REMOVED = DOMAIN + ".pe.removed";
    static final String PE_CHANGED = DOMAIN + ".pe.changed";
    static final String INACTIVITY_WARNING = DOMAIN + ".object.inactivity.warning";
    static final String INACTIVITY_UNREGISTER = DOMAIN + ".object.inactivity.unregister";
    static final Duration PE_METRICS_TIMEOUT = Duration.ofMillis(400);
    static final long SWEEP_MILLIS = 250;

    /** camelCase REST enum string -> Java enum constant name (partiallyHealthy -> PARTIALLY_HEALTHY). */
    static <E extends Enum<E>> E fromRest(Class<E> type, Object value, E fallback) {
        if (value == null) {
            return fallback;
        }
        String snake = String.valueOf(value).replaceAll("([a-z0-9])([A-Z])", "$1_$2").toUpperCase(Locale.ROOT);
        try {
            return Enum.valueOf(type, snake);
        } catch (IllegalArgumentException e) {
            return fallback;
        }
    }

    // ------------------------------------------------------------------------------------------ MXBean interfaces

    public interface InstanceMXBean {
        enum Status { STARTING, RUNNING, PARTIALLY_RUNNING, PARTIALLY_FAILED, STOPPING, STOPPED, FAILED, INITIALIZATION_FAILED, UNKNOWN }

        enum Health { HEALTHY, PARTIALLY_HEALTHY, PARTIALLY_UNHEALTHY, UNHEALTHY, UNKNOWN }

        String getId();

        Status getStatus();

        Health getHealth();

        long getStartTime();

        long getCreationTime();

        String getProductVersion();

        Set<String> getJobs();

        long getLastRefreshTime();

        /** Register the job's bean and its PEs' beans (job beans do not exist before). */
        void registerJobById(String jobId);

        /** registerJobById for every job of the instance. */
        void registerAllJobs();
    }

    public interface JobMXBean {
        enum Status { CONSTRUCTED, RUNNING, CANCELING, CANCELED, UNKNOWN }

        enum Health { HEALTHY, PARTIALLY_HEALTHY, PARTIALLY_UNHEALTHY, UNHEALTHY, UNKNOWN }

        BigInteger getId();

        String getName();

        String getApplicationName();

        String getApplicationVersion();

        String getInstance();

        Status getStatus();

        Health getHealth();

        long getSubmitTime();

        String getStartedBy();

        String getJobGroup();

        Set<BigInteger> getPes();
    }

    public interface PeMXBean {
        enum Status { CONSTRUCTED, SUBMITTED, STARTING, RUNNING, RESTARTING, STOPPING, STOPPED, UNKNOWN }

        enum StatusReason {
            NONE, AUTOMATIC, CRASH, FAILURE, HOST_FAILURE, USER_REQUEST, VOLUNTARY, NO_VIABLE_RESOURCE,
            SET_CAPABILITIES_FAILURE, UNKNOWN
        }

        enum Health { HEALTHY, PARTIALLY_HEALTHY, PARTIALLY_UNHEALTHY, UNHEALTHY, UNKNOWN }

        BigInteger getId();

        BigInteger getJobId();

        long getIndexWithinJob();

        Status getStatus();

        StatusReason getStatusReason();

        Health getHealth();

        long getLaunchCount();

        String getPid();

        String getResource();

        boolean isRestartable();

        long getNTuplesProcessed();

        long getNTuplesSubmitted();

        long getNCpuMilliseconds();

        long getNResidentMemoryConsumption();
    }

    // ------------------------------------------------------------------------------------------ MXBean objects

    public static final class Instance extends NotificationBroadcasterSupport implements InstanceMXBean {
        final String id;
        final ObjectName name;
        final AtomicLong sequence = new AtomicLong();
        volatile Status status = Status.UNKNOWN;
        volatile Health health = Health.UNKNOWN;
        volatile long startTime;
        volatile long creationTime;
        volatile String productVersion = "";
        volatile Set<String> jobs = Collections.emptySet();
        volatile long lastRefreshTime;
        StreamsJmx owner;

        Instance(String id, ObjectName name) {
            super(new MBeanNotificationInfo[] {
                new MBeanNotificationInfo(
                    new String[] {JOB_ADDED, JOB_REMOVED, JOB_CHANGED, PE_ADDED, PE_REMOVED, PE_CHANGED,
                        INACTIVITY_WARNING, INACTIVITY_UNREGISTER},
                    Notification.class.getName(),
                    "jobs and processing elements of the instance were added, removed or changed")
            });
            this.id = id;
            this.name = name;
        }

        void emit(String type, BigInteger subject, String message) {
            Notification n = new Notification(type, name, sequence.incrementAndGet(), System.currentTimeMillis(), message);
            n.setUserData(subject);
            sendNotification(n);
        }

        @Override public String getId() { return id; }
        @Override public Status getStatus() { return status; }
        @Override public Health getHealth() { return health; }
        @Override public long getStartTime() { return startTime; }
        @Override public long getCreationTime() { return creationTime; }
        @Override public String getProductVersion() { return productVersion; }
        @Override public Set<String> getJobs() { return jobs; }
        @Override public long getLastRefreshTime() { return lastRefreshTime; }
        @Override public void registerJobById(String jobId) { owner.register(jobId); }
        @Override public void registerAllJobs() { owner.registerAll(); }
    }

    public static final class Job implements JobMXBean {
        final BigInteger id;
        final String instance;
        volatile String name = "";
        volatile String applicationName = "";
        volatile String applicationVersion = "";
        volatile Status status = Status.UNKNOWN;
        volatile Health health = Health.UNKNOWN;
        volatile long submitTime;
        volatile String startedBy = "";
        volatile String jobGroup = "";
        volatile Set<BigInteger> pes = Collections.emptySet();

        Job(BigInteger id, String instance) {
            this.id = id;
            this.instance = instance;
        }

        /** Apply the REST job document; true when status or health changed. */
        boolean update(Map<String, Object> doc) {
            Status oldStatus = status;
            Health oldHealth = health;
            name = str(doc.get("name"));
            applicationName = str(doc.get("applicationName"));
            applicationVersion = str(doc.get("applicationVersion"));
            status = fromRest(Status.class, doc.get("status"), Status.UNKNOWN);
            health = fromRest(Health.class, doc.get("health"), Health.UNKNOWN);
            submitTime = num(doc.get("submitTime"));
            startedBy = str(doc.get("startedBy"));
            jobGroup = str(doc.get("jobGroup"));
            return oldStatus != status || oldHealth != health;
        }

        @Override public BigInteger getId() { return id; }
        @Override public String getName() { return name; }
        @Override public String getApplicationName() { return applicationName; }
        @Override public String getApplicationVersion() { return applicationVersion; }
        @Override public String getInstance() { return instance; }
        @Override public Status getStatus() { return status; }
        @Override public Health getHealth() { return health; }
        @Override public long getSubmitTime() { return submitTime; }
        @Override public String getStartedBy() { return startedBy; }
        @Override public String getJobGroup() { return jobGroup; }
        @Override public Set<BigInteger> getPes() { return pes; }
    }

    public static final class Pe implements PeMXBean {
        final BigInteger id;
        volatile BigInteger jobId = BigInteger.ZERO;
        volatile long indexWithinJob;
        volatile Status status = Status.UNKNOWN;
        volatile StatusReason statusReason = StatusReason.UNKNOWN;
        volatile Health health = Health.UNKNOWN;
        volatile long launchCount;
        volatile String pid = "";
        volatile String resource = "";
        volatile boolean restartable;
        volatile long nTuplesProcessed;
        volatile long nTuplesSubmitted;
        volatile long nCpuMilliseconds;
        volatile long nResidentMemoryConsumption;

        Pe(BigInteger id) {
            this.id = id;
        }

        /** Apply the REST PE document; true when status, reason, health, launch count or pid changed. */
        boolean update(Map<String, Object> doc, String host) {
            String before = status + "/" + statusReason + "/" + health + "/" + launchCount + "/" + pid;
            jobId = new BigInteger(lastSegment(str(doc.get("job"))));
            indexWithinJob = num(doc.get("indexWithinJob"));
            status = fromRest(Status.class, doc.get("status"), Status.UNKNOWN);
            statusReason = fromRest(StatusReason.class, doc.get("statusReason"), StatusReason.UNKNOWN);
            health = fromRest(Health.class, doc.get("health"), Health.UNKNOWN);
            launchCount = num(doc.get("launchCount"));
            pid = str(doc.get("processId"));
            Object res = doc.get("resource");
            resource = res != null ? lastSegment(str(res)) : host;
            restartable = Boolean.TRUE.equals(doc.get("restartable"));
            String after = status + "/" + statusReason + "/" + health + "/" + launchCount + "/" + pid;
            return !before.equals(after);
        }

        void metrics(List<Object> list) {
            for (Object o : list) {
                Map<String, Object> m = map(o);
                long v = num(m.get("value"));
                switch (str(m.get("name"))) {
                    case "nTuplesProcessed": nTuplesProcessed = v; break;
                    case "nTuplesSubmitted": nTuplesSubmitted = v; break;
                    case "nCpuMilliseconds": nCpuMilliseconds = v; break;
                    case "nResidentMemoryConsumption": nResidentMemoryConsumption = v; break;
                    default: break;
                }
            }
        }

        @Override public BigInteger getId() { return id; }
        @Override public BigInteger getJobId() { return jobId; }
        @Override public long getIndexWithinJob() { return indexWithinJob; }
        @Override public Status getStatus() { return status; }
        @Override public StatusReason getStatusReason() { return statusReason; }
        @Override public Health getHealth() { return health; }
        @Override public long getLaunchCount() { return launchCount; }
        @Override public String getPid() { return pid; }
        @Override public String getResource() { return resource; }
        @Override public boolean isRestartable() { return restartable; }
        @Override public long getNTuplesProcessed() { return nTuplesProcessed; }
        @Override public long getNTuplesSubmitted() { return nTuplesSubmitted; }
        @Override public long getNCpuMilliseconds() { return nCpuMilliseconds; }
        @Override public long getNResidentMemoryConsumption() { return nResidentMemoryConsumption; }
    }

    // ------------------------------------------------------------------------------------------ registration

    /** A registered job: when its job or PE beans were last read, and whether the warning went out. */
    static final class Registration {
        volatile long lastAccess;
        volatile boolean warned;

        Registration(long now) {
            lastAccess = now;
        }
    }

    /** The MXBean of a registered job or PE: every read or operation counts as activity of the job. */
    final class Tracked extends StandardMBean {
        final BigInteger jobId;

        <T> Tracked(T impl, Class<T> type, BigInteger jobId) throws NotCompliantMBeanException {
            super(impl, type, true);
            this.jobId = jobId;
        }

        @Override
        public Object getAttribute(String attribute) throws AttributeNotFoundException, MBeanException, ReflectionException {
            touch(jobId);
            return super.getAttribute(attribute);
        }

        @Override
        public AttributeList getAttributes(String[] attributes) {
            touch(jobId);
            return super.getAttributes(attributes);
        }

        @Override
        public Object invoke(String op, Object[] params, String[] signature) throws MBeanException, ReflectionException {
            touch(jobId);
            return super.invoke(op, params, signature);
        }
    }

    void touch(BigInteger jobId) {
        Registration r = registered.get(jobId);
        if (r != null) {
            r.lastAccess = System.currentTimeMillis();
            r.warned = false;
        }
    }

    /** InstanceMXBean.registerJobById: the job's bean and its PEs' beans appear (again). */
    synchronized void register(String jobId) {
        BigInteger id;
        try {
            id = new BigInteger(jobId.trim());
        } catch (NumberFormatException | NullPointerException e) {
            throw new IllegalArgumentException("not a job id: " + jobId);
        }
        Job job = jobs.get(id);
        if (job == null) {
            throw new IllegalArgumentException("no job " + jobId + " in instance " + instanceId);
        }
        if (registered.containsKey(id)) {
            touch(id);
            return;
        }
        registered.put(id, new Registration(System.currentTimeMillis()));
        try {
            mbs.registerMBean(new Tracked(job, JobMXBean.class, id), jobName(id));
            for (Pe pe : pes.values()) {
                if (pe.jobId.equals(id)) {
                    mbs.registerMBean(new Tracked(pe, PeMXBean.class, id), peName(pe.id));
                }
            }
        } catch (Exception e) {
            throw new IllegalStateException("cannot register job " + jobId + ": " + e, e);
        }
        log("job " + id + " registered");
    }

    synchronized void registerAll() {
        for (BigInteger id : new ArrayList<>(jobs.keySet())) {
            register(id.toString());
        }
    }

    void unregister(ObjectName name) {
        try {
            if (mbs.isRegistered(name)) {
                mbs.unregisterMBean(name);
            }
        } catch (Exception e) {
            log("cannot unregister " + name + ": " + e);
        }
    }

    /** Drop the beans of registered jobs nobody read for `inactivityMillis` (warning at half of it). */
    synchronized void sweepInactive(long now) throws Exception {
        for (Map.Entry<BigInteger, Registration> e : new ArrayList<>(registered.entrySet())) {
            BigInteger id = e.getKey();
            Registration r = e.getValue();
            long idle = now - r.lastAccess;
            if (idle >= inactivityMillis) {
                dropJobBeans(id);
                instance.emit(INACTIVITY_UNREGISTER, id, "job " + id + " not accessed for " + idle + " ms: unregistered");
                log("job " + id + " unregistered after " + idle + " ms without access");
            } else if (idle >= inactivityMillis / 2 && !r.warned) {
                r.warned = true;
                instance.emit(INACTIVITY_WARNING, id, "job " + id + " not accessed for " + idle
                    + " ms: unregistered after " + inactivityMillis + " ms");
            }
        }
    }

    void dropJobBeans(BigInteger id) throws Exception {
        registered.remove(id);
        unregister(jobName(id));
        for (Pe pe : pes.values()) {
            if (pe.jobId.equals(id)) {
                unregister(peName(pe.id));
            }
        }
    }

    // ------------------------------------------------------------------------------------------ sync with REST

    final String instanceId;
    final String iurl;
    final String auth;
    final HttpClient http;
    final long inactivityMillis;
    final MBeanServer mbs = ManagementFactory.getPlatformMBeanServer();
    final Instance instance;
    final Map<BigInteger, Job> jobs = new HashMap<>();
    final Map<BigInteger, Pe> pes = new HashMap<>();
    final Map<BigInteger, Registration> registered = new ConcurrentHashMap<>();
    boolean failing;

    StreamsJmx(String instanceId, String restBase, Path caPem, String user, String password, long inactivityMillis)
        throws Exception {
        this.instanceId = instanceId;
        this.inactivityMillis = inactivityMillis;
        this.iurl = restBase.replaceAll("/+$", "") + "/streams/instances/" + instanceId;
        this.auth = "Basic " + Base64.getEncoder().encodeToString((user + ":" + password).getBytes(StandardCharsets.UTF_8));
        this.http = HttpClient.newBuilder()
            .version(HttpClient.Version.HTTP_1_1)
            .sslContext(trusting(caPem))
            .connectTimeout(Duration.ofSeconds(2))
            .build();
        this.instance = new Instance(instanceId, instanceName(instanceId));
        this.instance.owner = this;
        mbs.registerMBean(instance, instance.name);
    }

    static SSLContext trusting(Path caPem) throws Exception {
        KeyStore ks = KeyStore.getInstance(KeyStore.getDefaultType());
        ks.load(null, null);
        try (InputStream in = Files.newInputStream(caPem)) {
            int i = 0;
            for (Certificate c : CertificateFactory.getInstance("X.509").generateCertificates(in)) {
                ks.setCertificateEntry("lab-ca-" + i++, c);
            }
        }
        TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
        tmf.init(ks);
        SSLContext ctx = SSLContext.getInstance("TLS");
        ctx.init(null, tmf.getTrustManagers(), null);
        return ctx;
    }

    /** The DC's TLS identity (PEM chain + PKCS#8 PEM key, as `lab up` writes them) as an in-memory PKCS12 store. */
    static SSLContext serving(Path certPem, Path keyPem) throws Exception {
        List<Certificate> chain = new ArrayList<>();
        try (InputStream in = Files.newInputStream(certPem)) {
            chain.addAll(CertificateFactory.getInstance("X.509").generateCertificates(in));
        }
        String pem = Files.readString(keyPem, StandardCharsets.US_ASCII);
        String b64 = pem.replaceAll("-----(BEGIN|END) PRIVATE KEY-----", "").replaceAll("\\s", "");
        PKCS8EncodedKeySpec spec = new PKCS8EncodedKeySpec(Base64.getDecoder().decode(b64));
        PrivateKey key;
        try {
            key = KeyFactory.getInstance("EC").generatePrivate(spec);
        } catch (java.security.spec.InvalidKeySpecException e) {
            key = KeyFactory.getInstance("RSA").generatePrivate(spec);
        }
        char[] secret = "lab".toCharArray();
        KeyStore ks = KeyStore.getInstance("PKCS12");
        ks.load(null, null);
        ks.setKeyEntry("server", key, secret, chain.toArray(new Certificate[0]));
        KeyManagerFactory kmf = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
        kmf.init(ks, secret);
        SSLContext ctx = SSLContext.getInstance("TLS");
        ctx.init(kmf.getKeyManagers(), null, null);
        return ctx;
    }

    /** Credentials check of the connector: String[]{user, password} equal to the lab user's. */
    static JMXAuthenticator authenticator(String user, String password) {
        byte[] u = user.getBytes(StandardCharsets.UTF_8);
        byte[] p = password.getBytes(StandardCharsets.UTF_8);
        return credentials -> {
            if (credentials instanceof String[] && ((String[]) credentials).length == 2) {
                String[] c = (String[]) credentials;
                boolean userOk = c[0] != null && MessageDigest.isEqual(u, c[0].getBytes(StandardCharsets.UTF_8));
                boolean passwordOk = c[1] != null && MessageDigest.isEqual(p, c[1].getBytes(StandardCharsets.UTF_8));
                if (userOk && passwordOk) {
                    return new Subject(true, Set.of(new JMXPrincipal(c[0])), Set.of(), Set.of());
                }
            }
            throw new SecurityException("Authentication failed");
        };
    }

    static JMXConnectorServer serve(MBeanServer mbs, String url, SSLContext tls, JMXAuthenticator auth) throws Exception {
        Map<String, Object> env = new HashMap<>();
        env.put(JMXConnectorServerFactory.PROTOCOL_PROVIDER_PACKAGES, DOMAIN);
        env.put("jmx.remote.tls.socket.factory", tls.getSocketFactory());
        env.put("jmx.remote.tls.enabled.protocols", "TLSv1.2 TLSv1.3");
        env.put(JMXConnectorServer.AUTHENTICATOR, auth);
        JMXConnectorServer server = JMXConnectorServerFactory.newJMXConnectorServer(new JMXServiceURL(url), env, mbs);
        server.start();
        return server;
    }

    static ObjectName instanceName(String instance) throws Exception {
        return new ObjectName(DOMAIN + ":type=instance,name=" + ObjectName.quote(instance));
    }

    ObjectName jobName(BigInteger id) throws Exception {
        return new ObjectName(DOMAIN + ":type=instance.job,instance=" + ObjectName.quote(instanceId) + ",id=" + id);
    }

    ObjectName peName(BigInteger id) throws Exception {
        return new ObjectName(DOMAIN + ":type=instance.pe,instance=" + ObjectName.quote(instanceId) + ",id=" + id);
    }

    Object get(String path) throws IOException, InterruptedException {
        return get(path, Duration.ofSeconds(3));
    }

    Object get(String path, Duration timeout) throws IOException, InterruptedException {
        HttpRequest req = HttpRequest.newBuilder(URI.create(iurl + path))
            .timeout(timeout)
            .header("Authorization", auth)
            .header("Accept", "application/json")
            .GET()
            .build();
        HttpResponse<String> resp = http.send(req, HttpResponse.BodyHandlers.ofString());
        if (resp.statusCode() == 404) {
            return null;
        }
        if (resp.statusCode() != 200) {
            throw new IOException("GET " + path + " answered " + resp.statusCode());
        }
        return Json.parse(resp.body());
    }

    /** Read the instance over REST (no lock held), then apply it to the model and the registered beans. */
    void poll() throws Exception {
        Map<String, Object> inst = map(get(""));
        List<Object> jobList = list(map(get("/jobs")).get("jobs"));
        List<Object> peList = list(map(get("/pes")).get("pes"));
        String host = "";
        Object hosts = get("/hosts");
        if (hosts != null) {
            List<Object> hl = list(map(hosts).get("hosts"));
            if (hl.size() == 1) {
                host = str(map(hl.get(0)).get("name"));
            }
        }
        Map<String, List<Object>> peMetrics = new HashMap<>();
        for (Object o : peList) {
            Map<String, Object> doc = map(o);
            if (!"running".equals(str(doc.get("status")))) {
                continue;
            }
            String id = str(doc.get("id"));
            // the instance asks the PE itself for these: a stopped PE must not stall the whole poll
            try {
                Object metrics = get("/pes/" + id + "/metrics", PE_METRICS_TIMEOUT);
                if (metrics != null) {
                    peMetrics.put(id, list(map(metrics).get("metrics")));
                }
            } catch (java.net.http.HttpTimeoutException e) {
                // keep the last counters; status and health are current
            }
        }
        apply(inst, jobList, peList, host, peMetrics);
    }

    synchronized void apply(Map<String, Object> inst, List<Object> jobList, List<Object> peList, String host,
                            Map<String, List<Object>> peMetrics) throws Exception {
        instance.status = fromRest(InstanceMXBean.Status.class, inst.get("status"), InstanceMXBean.Status.UNKNOWN);
        instance.health = fromRest(InstanceMXBean.Health.class, inst.get("health"), InstanceMXBean.Health.UNKNOWN);
        instance.startTime = num(inst.get("startTime"));
        instance.creationTime = num(inst.get("creationTime"));
        instance.productVersion = str(inst.get("productVersion"));

        // PEs first: the job beans list their PE ids
        Map<BigInteger, Set<BigInteger>> pesOfJob = new HashMap<>();
        Set<BigInteger> seenPes = new TreeSet<>();
        for (Object o : peList) {
            Map<String, Object> doc = map(o);
            BigInteger id = new BigInteger(str(doc.get("id")));
            seenPes.add(id);
            Pe pe = pes.get(id);
            boolean added = pe == null;
            if (added) {
                pe = new Pe(id);
            }
            boolean changed = pe.update(doc, host);
            List<Object> metrics = peMetrics.get(id.toString());
            if (metrics != null) {
                pe.metrics(metrics);
            }
            pesOfJob.computeIfAbsent(pe.jobId, k -> new TreeSet<>()).add(id);
            if (added) {
                pes.put(id, pe);
                if (registered.containsKey(pe.jobId)) {
                    mbs.registerMBean(new Tracked(pe, PeMXBean.class, pe.jobId), peName(id));
                }
                instance.emit(PE_ADDED, id, "pe " + id + " added");
            } else if (changed) {
                instance.emit(PE_CHANGED, id, "pe " + id + " " + pe.status + " " + pe.health + " launchCount " + pe.launchCount);
            }
        }
        for (BigInteger id : new ArrayList<>(pes.keySet())) {
            if (!seenPes.contains(id)) {
                pes.remove(id);
                unregister(peName(id));
                instance.emit(PE_REMOVED, id, "pe " + id + " removed");
            }
        }

        Set<BigInteger> seenJobs = new TreeSet<>();
        for (Object o : jobList) {
            Map<String, Object> doc = map(o);
            BigInteger id = new BigInteger(str(doc.get("id")));
            seenJobs.add(id);
            Job job = jobs.get(id);
            boolean added = job == null;
            if (added) {
                job = new Job(id, instanceId);
            }
            boolean changed = job.update(doc);
            job.pes = Collections.unmodifiableSet(pesOfJob.getOrDefault(id, new TreeSet<>()));
            if (added) {
                jobs.put(id, job);
                instance.emit(JOB_ADDED, id, "job " + id + " (" + job.name + ") added");
            } else if (changed) {
                instance.emit(JOB_CHANGED, id, "job " + id + " " + job.status + " " + job.health);
            }
        }
        for (BigInteger id : new ArrayList<>(jobs.keySet())) {
            if (!seenJobs.contains(id)) {
                jobs.remove(id);
                registered.remove(id);
                unregister(jobName(id));
                instance.emit(JOB_REMOVED, id, "job " + id + " removed");
            }
        }
        Set<String> ids = new TreeSet<>();
        for (BigInteger id : seenJobs) {
            ids.add(id.toString());
        }
        instance.jobs = Collections.unmodifiableSet(ids);
        instance.lastRefreshTime = System.currentTimeMillis();
    }

    /** Inactivity sweeps on their own clock (every 250 ms), so a slow REST poll does not delay a drop. */
    void startSweeper() {
        Thread t = new Thread(() -> {
            while (true) {
                try {
                    synchronized (this) {
                        sweepInactive(System.currentTimeMillis());
                    }
                    Thread.sleep(SWEEP_MILLIS);
                } catch (InterruptedException e) {
                    return;
                } catch (Exception e) {
                    log("inactivity sweep failed: " + e);
                }
            }
        }, "inactivity-sweeper");
        t.setDaemon(true);
        t.start();
    }

    void run(long pollMillis) throws InterruptedException {
        log("JMX for " + instanceId + " polling " + iurl + " every " + pollMillis + " ms; job beans dropped after "
            + inactivityMillis + " ms without access");
        while (true) {
            try {
                poll();
                if (failing) {
                    log("REST API of " + instanceId + " answers again");
                }
                failing = false;
            } catch (InterruptedException e) {
                throw e;
            } catch (Exception e) {
                if (!failing) {
                    log("cannot poll " + iurl + ": " + e);
                }
                failing = true;
            }
            Thread.sleep(pollMillis);
        }
    }

    static void log(String message) {
        System.err.println(Instant.now() + " StreamsJmx: " + message);
    }

    public static void main(String[] args) throws Exception {
        if (args.length < 10) {
            System.err.println("usage: StreamsJmx <instanceId> <restBase> <caPem> <passwordFile> <user> <pollMillis>"
                + " <jmxServiceUrl> <tlsCertPem> <tlsKeyPem> <inactivityMillis>");
            System.exit(2);
        }
        String password = Files.readString(Path.of(args[3]), StandardCharsets.US_ASCII).strip();
        long pollMillis = Long.parseLong(args[5]);
        StreamsJmx jmx = new StreamsJmx(args[0], args[1], Path.of(args[2]), args[4], password, Long.parseLong(args[9]));
        serve(jmx.mbs, args[6], serving(Path.of(args[7]), Path.of(args[8])), authenticator(args[4], password));
        log("JMXMP connector server (TLS, credentials) listening on " + args[6]);
        jmx.startSweeper();
        jmx.run(pollMillis);
    }

    // ------------------------------------------------------------------------------------------ JSON helpers

    static String str(Object o) {
        return o == null ? "" : String.valueOf(o);
    }

    static long num(Object o) {
        if (o instanceof Number) {
            return ((Number) o).longValue();
        }
        try {
            return o == null ? 0 : Long.parseLong(String.valueOf(o));
        } catch (NumberFormatException e) {
            return 0;
        }
    }

    @SuppressWarnings("unchecked")
    static Map<String, Object> map(Object o) {
        if (!(o instanceof Map)) {
            throw new IllegalStateException("expected a JSON object, got " + (o == null ? "nothing" : o.getClass().getSimpleName()));
        }
        return (Map<String, Object>) o;
    }

    @SuppressWarnings("unchecked")
    static List<Object> list(Object o) {
        return o instanceof List ? (List<Object>) o : Collections.emptyList();
    }

    static String lastSegment(String url) {
        String u = url.replaceAll("/+$", "");
        return u.substring(u.lastIndexOf('/') + 1);
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
    }
}
