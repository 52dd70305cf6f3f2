// The lab's stand-in for IBM's JMXMP server side (see Wire.java for the wire format, which is the lab's own).
// JMXConnectorServerFactory finds it through `jmx.remote.protocol.provider.pkgs=com.ibm.streams.management`
// for `service:jmx:jmxmp://host:port` URLs. Environment honoured:
//   jmx.remote.tls.socket.factory     SSLSocketFactory whose context holds the server's key (required: no
//                                     plain connections are served; every accepted socket is TLS at once)
//   jmx.remote.tls.enabled.protocols  e.g. "TLSv1.2 TLSv1.3"
//   jmx.remote.authenticator          JMXAuthenticator for the client's `jmx.remote.credentials` (required)
// Only MBeanServerConnection methods can be called remotely (no registerMBean, class loaders, deserialize).

package com.ibm.streams.management.jmxmp;

import java.io.IOException;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.MalformedURLException;
import java.net.ServerSocket;
import java.net.Socket;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;
import javax.management.MBeanServer;
import javax.management.MBeanServerConnection;
import javax.management.NotificationListener;
import javax.management.ObjectName;
import javax.management.remote.JMXAuthenticator;
import javax.management.remote.JMXConnectorServer;
import javax.management.remote.JMXConnectorServerProvider;
import javax.management.remote.JMXServiceURL;
import javax.net.ssl.SSLSocket;
import javax.net.ssl.SSLSocketFactory;

public final class ServerProvider implements JMXConnectorServerProvider {
    @Override
    public JMXConnectorServer newJMXConnectorServer(JMXServiceURL url, Map<String, ?> environment, MBeanServer mbs)
        throws IOException {
        if (!Wire.PROTOCOL.equals(url.getProtocol())) {
            throw new MalformedURLException("protocol is not " + Wire.PROTOCOL + ": " + url);
        }
        return new Server(url, environment == null ? Map.of() : Map.copyOf(environment), mbs);
    }

    static final class Server extends JMXConnectorServer {
        private static final int HANDSHAKE_TIMEOUT_MS = 10_000;
        private final JMXServiceURL url;
        private final Map<String, ?> env;
        private final SSLSocketFactory tls;
        private final JMXAuthenticator authenticator;
        private final AtomicLong connections = new AtomicLong();
        private final Map<String, Wire.Channel> open = new ConcurrentHashMap<>();
        private volatile ServerSocket listener;

        Server(JMXServiceURL url, Map<String, ?> env, MBeanServer mbs) throws IOException {
            super(mbs);
            this.url = url;
            this.env = env;
            if (!(env.get(Wire.TLS_FACTORY) instanceof SSLSocketFactory)) {
                throw new IOException(Wire.TLS_FACTORY + " (an SSLSocketFactory with the server key) is required");
            }
            if (!(env.get(JMXConnectorServer.AUTHENTICATOR) instanceof JMXAuthenticator)) {
                throw new IOException(JMXConnectorServer.AUTHENTICATOR + " is required");
            }
            this.tls = (SSLSocketFactory) env.get(Wire.TLS_FACTORY);
            this.authenticator = (JMXAuthenticator) env.get(JMXConnectorServer.AUTHENTICATOR);
        }

        @Override
        public synchronized void start() throws IOException {
            if (listener != null) {
                return;
            }
            ServerSocket s = new ServerSocket();
            s.setReuseAddress(true);
            s.bind(new InetSocketAddress(InetAddress.getByName(url.getHost()), url.getPort()), 50);
            listener = s;
            Thread acceptor = new Thread(this::acceptLoop, "jmxmp-accept " + url);
            acceptor.setDaemon(true);
            acceptor.start();
        }

        private void acceptLoop() {
            ServerSocket s = listener;
            while (s != null && !s.isClosed()) {
                try {
                    Socket plain = s.accept();
                    Thread t = new Thread(() -> serve(plain), "jmxmp-conn " + plain.getRemoteSocketAddress());
                    t.setDaemon(true);
                    t.start();
                } catch (IOException e) {
                    if (!s.isClosed()) {
                        System.err.println("jmxmp: accept failed: " + e);
                    }
                }
            }
        }

        private void serve(Socket plain) {
            String id = null;
            Wire.Channel ch = null;
            try {
                plain.setSoTimeout(HANDSHAKE_TIMEOUT_MS);
                SSLSocket sock = (SSLSocket) tls.createSocket(plain, null, plain.getPort(), true);
                sock.setUseClientMode(false);
                Wire.protocols(sock, env);
                sock.startHandshake();
                ch = new Wire.Channel(sock);
                Wire.Frame hello = ch.read();
                if (hello.kind != Wire.Kind.HELLO || !Wire.VERSION.equals(hello.method)) {
                    ch.write(Wire.Frame.result(0, null, new IOException("expected " + Wire.VERSION + " HELLO")));
                    return;
                }
                try {
                    authenticator.authenticate(hello.args == null || hello.args.length == 0 ? null : hello.args[0]);
                } catch (SecurityException e) {
                    ch.write(Wire.Frame.result(0, null, new SecurityException("Authentication failed")));
                    connectionNotAuthenticated(plain);
                    return;
                }
                id = "jmxmp://" + plain.getRemoteSocketAddress() + " " + connections.incrementAndGet();
                open.put(id, ch);
                ch.write(Wire.Frame.result(0, id, null));
                sock.setSoTimeout(0);
                connectionOpened(id, "authenticated", null);
                callLoop(ch);
            } catch (IOException e) {
                // handshake refused (plain or untrusting client), peer gone: nothing to answer
            } finally {
                if (ch != null) {
                    ch.close();
                } else {
                    try {
                        plain.close();
                    } catch (IOException ignored) {
                        // closing anyway
                    }
                }
                if (id != null) {
                    open.remove(id);
                    connectionClosed(id, "closed", null);
                }
            }
        }

        private void connectionNotAuthenticated(Socket plain) {
            System.err.println("jmxmp: refused credentials from " + plain.getRemoteSocketAddress());
        }

        private void callLoop(Wire.Channel ch) throws IOException {
            Map<Long, Map.Entry<ObjectName, NotificationListener>> listeners = new ConcurrentHashMap<>();
            MBeanServer mbs = getMBeanServer();
            try {
                while (true) {
                    Wire.Frame f = ch.read();
                    Object result = null;
                    Throwable error = null;
                    try {
                        if (f.kind == Wire.Kind.ADD_LISTENER) {
                            long lid = Long.parseLong(f.method);
                            NotificationListener l = (n, handback) -> {
                                try {
                                    ch.write(Wire.Frame.notification(lid, n));
                                } catch (IOException ignored) {
                                    // the call loop sees the broken connection and removes the listener
                                }
                            };
                            mbs.addNotificationListener((ObjectName) f.args[0], l, null, null);
                            listeners.put(lid, Map.entry((ObjectName) f.args[0], l));
                        } else if (f.kind == Wire.Kind.REMOVE_LISTENER) {
                            Map.Entry<ObjectName, NotificationListener> l = listeners.remove(Long.parseLong(f.method));
                            if (l != null) {
                                mbs.removeNotificationListener(l.getKey(), l.getValue());
                            }
                        } else if (f.kind == Wire.Kind.CALL) {
                            Class<?>[] types = new Class<?>[f.types.length];
                            for (int i = 0; i < types.length; i++) {
                                types[i] = Wire.type(f.types[i]);
                            }
                            Method m = MBeanServerConnection.class.getMethod(f.method, types);
                            result = m.invoke(mbs, f.args);
                        } else {
                            error = new IOException("unexpected frame " + f.kind);
                        }
                    } catch (InvocationTargetException e) {
                        error = e.getCause();
                    } catch (Exception e) {
                        error = e;
                    }
                    ch.write(Wire.Frame.result(f.id, result, error));
                }
            } finally {
                for (Map.Entry<ObjectName, NotificationListener> l : listeners.values()) {
                    try {
                        mbs.removeNotificationListener(l.getKey(), l.getValue());
                    } catch (Exception ignored) {
                        // the bean is gone already
                    }
                }
            }
        }

        @Override
        public synchronized void stop() throws IOException {
            ServerSocket s = listener;
            listener = null;
            if (s != null) {
                s.close();
            }
            for (Wire.Channel ch : open.values()) {
                ch.close();
            }
        }

        @Override
        public boolean isActive() {
            ServerSocket s = listener;
            return s != null && !s.isClosed();
        }

        @Override
        public JMXServiceURL getAddress() {
            return url;
        }

        @Override
        public Map<String, ?> getAttributes() {
            return Map.of();
        }
    }
}
