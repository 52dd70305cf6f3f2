// The lab's stand-in for IBM's JMXMP client provider (see Wire.java for the wire format, which is the lab's own).
// JMXConnectorFactory finds it through `jmx.remote.protocol.provider.pkgs=com.ibm.streams.management` for
// `service:jmx:jmxmp://host:port` URLs. Environment honoured:
//   jmx.remote.credentials                String[]{user, password}, checked by the server
//   jmx.remote.tls.socket.factory         SSLSocketFactory (default: SSLContext.getDefault()); the server's
//                                         certificate must match the URL's host (HTTPS endpoint identification)
//   jmx.remote.tls.enabled.protocols      e.g. "TLSv1.2 TLSv1.3"
//   jmx.remote.x.request.waiting.timeout  ms a call waits for its answer (default 60000; connect uses it too)

package com.ibm.streams.management.jmxmp;

import java.io.IOException;
import java.lang.reflect.InvocationHandler;
import java.lang.reflect.Method;
import java.lang.reflect.Proxy;
import java.net.InetSocketAddress;
import java.net.MalformedURLException;
import java.net.Socket;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicLong;
import javax.management.ListenerNotFoundException;
import javax.management.MBeanServerConnection;
import javax.management.NotificationBroadcasterSupport;
import javax.management.NotificationFilter;
import javax.management.NotificationListener;
import javax.management.ObjectName;
import javax.management.remote.JMXConnectionNotification;
import javax.management.remote.JMXConnector;
import javax.management.remote.JMXConnectorProvider;
import javax.management.remote.JMXServiceURL;
import javax.net.ssl.SSLParameters;
import javax.net.ssl.SSLSocket;
import javax.security.auth.Subject;

public final class ClientProvider implements JMXConnectorProvider {
    @Override
    public JMXConnector newJMXConnector(JMXServiceURL url, Map<String, ?> environment) throws IOException {
        if (!Wire.PROTOCOL.equals(url.getProtocol())) {
            throw new MalformedURLException("protocol is not " + Wire.PROTOCOL + ": " + url);
        }
        return new Connector(url, environment);
    }

    static final class Connector implements JMXConnector {
        private final JMXServiceURL url;
        private final Map<String, ?> baseEnv;
        private final NotificationBroadcasterSupport events = new NotificationBroadcasterSupport();
        private final AtomicLong sequence = new AtomicLong();
        private final Map<Long, CompletableFuture<Wire.Frame>> pending = new ConcurrentHashMap<>();
        private final Map<Long, Listener> listeners = new ConcurrentHashMap<>();
        private volatile Wire.Channel channel;
        private volatile String connectionId;
        private volatile boolean closed;
        private volatile long timeoutMillis = 60_000;
        private ExecutorService dispatcher;
        private MBeanServerConnection connection;

        Connector(JMXServiceURL url, Map<String, ?> environment) {
            this.url = url;
            this.baseEnv = environment == null ? Map.of() : Map.copyOf(environment);
        }

        @Override
        public void connect() throws IOException {
            connect(null);
        }

        @Override
        public synchronized void connect(Map<String, ?> environment) throws IOException {
            if (closed) {
                throw new IOException("connector closed");
            }
            if (channel != null) {
                return;
            }
            Map<String, Object> env = new java.util.HashMap<>(baseEnv);
            if (environment != null) {
                env.putAll(environment);
            }
            Object t = env.get(Wire.REQUEST_TIMEOUT);
            if (t != null) {
                timeoutMillis = Long.parseLong(String.valueOf(t));
            }
            int timeout = (int) Math.min(Integer.MAX_VALUE, timeoutMillis);
            Socket plain = new Socket();
            SSLSocket tls;
            try {
                plain.connect(new InetSocketAddress(url.getHost(), url.getPort()), timeout);
                plain.setSoTimeout(timeout);
                tls = (SSLSocket) Wire.socketFactory(env).createSocket(plain, url.getHost(), url.getPort(), true);
                tls.setUseClientMode(true);
                SSLParameters params = tls.getSSLParameters();
                params.setEndpointIdentificationAlgorithm("HTTPS");
                tls.setSSLParameters(params);
                Wire.protocols(tls, env);
                tls.startHandshake();
            } catch (IOException e) {
                plain.close();
                throw e;
            }
            Wire.Channel ch = new Wire.Channel(tls);
            Wire.Frame answer;
            try {
                Object creds = env.get(JMXConnector.CREDENTIALS);
                ch.write(Wire.Frame.call(Wire.Kind.HELLO, 0, Wire.VERSION, null, new Object[] {creds}));
                answer = ch.read();
            } catch (IOException e) {
                ch.close();
                throw e;
            }
            if (answer.error != null) {
                ch.close();
                if (answer.error instanceof SecurityException) {
                    throw (SecurityException) answer.error;
                }
                throw new IOException("connection refused: " + answer.error, answer.error);
            }
            tls.setSoTimeout(0); // the reader blocks until the next frame; calls time out on their futures
            connectionId = String.valueOf(answer.result);
            channel = ch;
            dispatcher = Executors.newSingleThreadExecutor(r -> {
                Thread th = new Thread(r, "jmxmp-notifications " + url.getHost());
                th.setDaemon(true);
                return th;
            });
            connection = (MBeanServerConnection) Proxy.newProxyInstance(
                MBeanServerConnection.class.getClassLoader(), new Class<?>[] {MBeanServerConnection.class}, new Calls());
            Thread reader = new Thread(() -> readLoop(ch), "jmxmp-reader " + url.getHost());
            reader.setDaemon(true);
            reader.start();
            emit(JMXConnectionNotification.OPENED, "connected to " + url);
        }

        private void readLoop(Wire.Channel ch) {
            try {
                while (true) {
                    Wire.Frame f = ch.read();
                    if (f.kind == Wire.Kind.RESULT) {
                        CompletableFuture<Wire.Frame> fut = pending.remove(f.id);
                        if (fut != null) {
                            fut.complete(f);
                        }
                    } else if (f.kind == Wire.Kind.NOTIFICATION) {
                        Listener l = listeners.get(f.id);
                        if (l != null && (l.filter == null || l.filter.isNotificationEnabled(f.notification))) {
                            dispatcher.execute(() -> l.listener.handleNotification(f.notification, l.handback));
                        }
                    }
                }
            } catch (IOException e) {
                failAll(new IOException("connection to " + url + " lost: " + e.getMessage(), e));
                if (!closed) {
                    emit(JMXConnectionNotification.FAILED, "connection lost: " + e);
                }
            }
        }

        private void failAll(IOException e) {
            channel = null;
            for (Long id : new ArrayList<>(pending.keySet())) {
                CompletableFuture<Wire.Frame> fut = pending.remove(id);
                if (fut != null) {
                    fut.completeExceptionally(e);
                }
            }
        }

        private void emit(String type, String message) {
            events.sendNotification(new JMXConnectionNotification(type, this, String.valueOf(connectionId),
                sequence.incrementAndGet(), message, null));
        }

        Object call(Wire.Kind kind, String method, String[] types, Object[] args) throws Exception {
            Wire.Channel ch = channel;
            if (ch == null) {
                throw new IOException("not connected to " + url);
            }
            long id = sequence.incrementAndGet();
            CompletableFuture<Wire.Frame> fut = new CompletableFuture<>();
            pending.put(id, fut);
            Wire.Frame answer;
            try {
                ch.write(Wire.Frame.call(kind, id, method, types, args));
                answer = fut.get(timeoutMillis, TimeUnit.MILLISECONDS);
            } catch (TimeoutException e) {
                throw new IOException(method + " on " + url + ": no answer within " + timeoutMillis + " ms");
            } catch (ExecutionException e) {
                throw e.getCause() instanceof IOException ? (IOException) e.getCause() : new IOException(e.getCause());
            } finally {
                pending.remove(id);
            }
            if (answer.error != null) {
                throw (Exception) (answer.error instanceof Exception ? answer.error : new IOException(answer.error));
            }
            return answer.result;
        }

        final class Calls implements InvocationHandler {
            @Override
            public Object invoke(Object proxy, Method m, Object[] args) throws Throwable {
                switch (m.getName()) {
                    case "toString": return "MBeanServerConnection(" + url + ")";
                    case "hashCode": return System.identityHashCode(proxy);
                    case "equals": return proxy == args[0];
                    default: break;
                }
                Class<?>[] ps = m.getParameterTypes();
                boolean objectListener = ps.length >= 2 && ps[1] == NotificationListener.class;
                try {
                    if (objectListener && m.getName().equals("addNotificationListener")) {
                        long id = sequence.incrementAndGet();
                        listeners.put(id, new Listener((ObjectName) args[0], (NotificationListener) args[1],
                            (NotificationFilter) args[2], args[3]));
                        call(Wire.Kind.ADD_LISTENER, String.valueOf(id), null, new Object[] {args[0]});
                        return null;
                    }
                    if (objectListener && m.getName().equals("removeNotificationListener")) {
                        List<Long> ids = new ArrayList<>();
                        listeners.forEach((id, l) -> {
                            if (l.name.equals(args[0]) && l.listener == args[1]
                                && (args.length == 2 || (l.filter == args[2] && l.handback == args[3]))) {
                                ids.add(id);
                            }
                        });
                        if (ids.isEmpty()) {
                            throw new ListenerNotFoundException("listener not registered on " + args[0]);
                        }
                        for (Long id : ids) {
                            listeners.remove(id);
                            call(Wire.Kind.REMOVE_LISTENER, String.valueOf(id), null, new Object[] {args[0]});
                        }
                        return null;
                    }
                    String[] types = new String[ps.length];
                    for (int i = 0; i < ps.length; i++) {
                        types[i] = ps[i].getName();
                    }
                    return call(Wire.Kind.CALL, m.getName(), types, args == null ? new Object[0] : args);
                } catch (Exception e) {
                    if (e instanceof RuntimeException) {
                        throw e;
                    }
                    for (Class<?> declared : m.getExceptionTypes()) {
                        if (declared.isInstance(e)) {
                            throw e;
                        }
                    }
                    throw new IOException(e.toString(), e);
                }
            }
        }

        static final class Listener {
            final ObjectName name;
            final NotificationListener listener;
            final NotificationFilter filter;
            final Object handback;

            Listener(ObjectName name, NotificationListener listener, NotificationFilter filter, Object handback) {
                this.name = name;
                this.listener = listener;
                this.filter = filter;
                this.handback = handback;
            }
        }

        @Override
        public synchronized MBeanServerConnection getMBeanServerConnection() throws IOException {
            if (connection == null || channel == null) {
                throw new IOException("not connected to " + url);
            }
            return connection;
        }

        @Override
        public MBeanServerConnection getMBeanServerConnection(Subject delegationSubject) throws IOException {
            if (delegationSubject != null) {
                throw new UnsupportedOperationException("the lab's connector has no delegation subjects");
            }
            return getMBeanServerConnection();
        }

        @Override
        public synchronized void close() throws IOException {
            if (closed) {
                return;
            }
            closed = true;
            Wire.Channel ch = channel;
            if (ch != null) {
                ch.close();
            }
            failAll(new IOException("connector closed"));
            if (dispatcher != null) {
                dispatcher.shutdownNow();
            }
            emit(JMXConnectionNotification.CLOSED, "closed");
        }

        @Override
        public void addConnectionNotificationListener(NotificationListener l, NotificationFilter f, Object handback) {
            events.addNotificationListener(l, f, handback);
        }

        @Override
        public void removeConnectionNotificationListener(NotificationListener l) throws ListenerNotFoundException {
            events.removeNotificationListener(l);
        }

        @Override
        public void removeConnectionNotificationListener(NotificationListener l, NotificationFilter f, Object handback)
            throws ListenerNotFoundException {
            events.removeNotificationListener(l, f, handback);
        }

        @Override
        public String getConnectionId() throws IOException {
            if (connectionId == null) {
                throw new IOException("not connected");
            }
            return connectionId;
        }
    }
}
