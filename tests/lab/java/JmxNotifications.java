// Test helper of tests/lab/test_lab_jmx.py, run in source-launcher mode with the lab's classes on the classpath:
//   java -cp /run/xdc-lab/java JmxNotifications.java <url> <user> <password> <caPem> <instance> <jobId> <seconds>
// Connects over JMXMP + TLS + credentials, subscribes to the instance bean's notifications, registers the job,
// reads its bean once, then prints one line per notification ("<ms since the read> <type> <userData>") until
// the job's inactivity unregister arrived (then "registered <true|false>" for the job bean) or time is up.

import java.io.InputStream;
import java.math.BigInteger;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyStore;
import java.security.cert.Certificate;
import java.security.cert.CertificateFactory;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import javax.management.MBeanServerConnection;
import javax.management.ObjectName;
import javax.management.remote.JMXConnector;
import javax.management.remote.JMXConnectorFactory;
import javax.management.remote.JMXServiceURL;
import javax.net.ssl.SSLContext;
import javax.net.ssl.TrustManagerFactory;

public final class JmxNotifications {
    public static void main(String[] a) throws Exception {
        KeyStore ks = KeyStore.getInstance(KeyStore.getDefaultType());
        ks.load(null, null);
        try (InputStream in = Files.newInputStream(Path.of(a[3]))) {
            int i = 0;
            for (Certificate c : CertificateFactory.getInstance("X.509").generateCertificates(in)) {
                ks.setCertificateEntry("ca" + i++, c);
            }
        }
        TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
        tmf.init(ks);
        SSLContext ctx = SSLContext.getInstance("TLS");
        ctx.init(null, tmf.getTrustManagers(), null);
        Map<String, Object> env = new HashMap<>();
        env.put("jmx.remote.protocol.provider.pkgs", "com.ibm.streams.management");
        env.put("jmx.remote.credentials", new String[] {a[1], a[2]});
        env.put("jmx.remote.tls.socket.factory", ctx.getSocketFactory());
        try (JMXConnector c = JMXConnectorFactory.connect(new JMXServiceURL(a[0]), env)) {
            MBeanServerConnection m = c.getMBeanServerConnection();
            ObjectName inst = new ObjectName("com.ibm.streams.management:type=instance,name=" + ObjectName.quote(a[4]));
            ObjectName job = new ObjectName("com.ibm.streams.management:type=instance.job,instance="
                + ObjectName.quote(a[4]) + ",id=" + a[5]);
            CountDownLatch dropped = new CountDownLatch(1);
            long[] t0 = new long[1];
            m.addNotificationListener(inst, (n, hb) -> {
                if (!n.getType().contains(".object.inactivity.")) {
                    return;
                }
                System.out.println((System.currentTimeMillis() - t0[0]) + " " + n.getType() + " " + n.getUserData());
                System.out.flush();
                if (n.getType().endsWith(".unregister") && new BigInteger(a[5]).equals(n.getUserData())) {
                    dropped.countDown();
                }
            }, null, null);
            m.invoke(inst, "registerJobById", new Object[] {a[5]}, new String[] {"java.lang.String"});
            System.out.println("read Name=" + m.getAttribute(job, "Name"));
            t0[0] = System.currentTimeMillis();
            boolean done = dropped.await(Long.parseLong(a[6]), TimeUnit.SECONDS);
            System.out.println("registered " + m.isRegistered(job) + (done ? "" : " (timed out)"));
        }
    }
}
