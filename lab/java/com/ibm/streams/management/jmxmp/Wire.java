// The lab's stand-in for the JMXMP connector of IBM's `com.ibm.streams.management` jar: shared wire code.
//
// WIRE FORMAT (the lab's own, NOT IBM's and not JSR 160 JMXMP): a TLS socket carrying Java-serialized `Frame`
// objects. The client opens with HELLO (credentials = the `jmx.remote.credentials` String[]{user, password});
// the server answers OK or an error (SecurityException: wrong credentials) and closes on error. Then CALL frames
// name an MBeanServerConnection method (name + parameter type names + arguments) and the server answers with a
// RESULT frame of the same id (value or Throwable). addNotificationListener(ObjectName, NotificationListener, ...)
// travels as ADD_LISTENER with a client-side listener id; the server pushes NOTIFICATION frames for it (filters
// and handbacks stay on the client). Both sides deserialize only JDK (java.base, java.management) and
// com.ibm.streams.management classes.
//
// On a real Streams pair this package is NOT used: IBM's jar from the Streams install
// (`$STREAMS_INSTALL/lib/com.ibm.streams.management.*.jar`) goes on the client classpath and provides the
// real `com.ibm.streams.management.jmxmp.ClientProvider`.

package com.ibm.streams.management.jmxmp;

import java.io.IOException;
import java.io.ObjectInputFilter;
import java.io.ObjectInputStream;
import java.io.ObjectOutputStream;
import java.io.Serializable;
import java.io.BufferedInputStream;
import java.io.BufferedOutputStream;
import java.net.Socket;
import java.util.Map;
import javax.management.Notification;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLSocket;
import javax.net.ssl.SSLSocketFactory;

final class Wire {
    static final String PROTOCOL = "jmxmp";
    static final String TLS_FACTORY = "jmx.remote.tls.socket.factory";
    static final String TLS_PROTOCOLS = "jmx.remote.tls.enabled.protocols";
    static final String REQUEST_TIMEOUT = "jmx.remote.x.request.waiting.timeout";
    static final String VERSION = "xdc-lab-jmxmp/1";
    static final ObjectInputFilter FILTER = ObjectInputFilter.Config.createFilter(
        "maxdepth=40;maxrefs=100000;maxbytes=16777216;java.base/*;java.management/*;"
            + "com.ibm.streams.management.**;!*");

    private Wire() {
    }

    enum Kind { HELLO, OK, CALL, RESULT, ADD_LISTENER, REMOVE_LISTENER, NOTIFICATION }

    static final class Frame implements Serializable {
        private static final long serialVersionUID = 1L;
        final Kind kind;
        final long id;
        final String method;
        final String[] types;
        final Object[] args;
        final Object result;
        final Throwable error;
        final Notification notification;

        Frame(Kind kind, long id, String method, String[] types, Object[] args, Object result, Throwable error,
              Notification notification) {
            this.kind = kind;
            this.id = id;
            this.method = method;
            this.types = types;
            this.args = args;
            this.result = result;
            this.error = error;
            this.notification = notification;
        }

        static Frame call(Kind kind, long id, String method, String[] types, Object[] args) {
            return new Frame(kind, id, method, types, args, null, null, null);
        }

        static Frame result(long id, Object result, Throwable error) {
            return new Frame(Kind.RESULT, id, null, null, null, result, error, null);
        }

        static Frame notification(long listenerId, Notification n) {
            return new Frame(Kind.NOTIFICATION, listenerId, null, null, null, null, null, n);
        }
    }

    /** One end of a connection: synchronized writes, filtered reads. */
    static final class Channel implements AutoCloseable {
        final Socket socket;
        private final ObjectOutputStream out;
        private final ObjectInputStream in;

        Channel(Socket socket) throws IOException {
            this.socket = socket;
            this.out = new ObjectOutputStream(new BufferedOutputStream(socket.getOutputStream()));
            this.out.flush();
            this.in = new ObjectInputStream(new BufferedInputStream(socket.getInputStream()));
            this.in.setObjectInputFilter(FILTER);
        }

        synchronized void write(Frame f) throws IOException {
            out.writeObject(f);
            out.reset(); // no back references between frames: the peer's view of a bean must not go stale
            out.flush();
        }

        Frame read() throws IOException {
            try {
                Object o = in.readObject();
                if (!(o instanceof Frame)) {
                    throw new IOException("unexpected object on the wire: " + (o == null ? "null" : o.getClass().getName()));
                }
                return (Frame) o;
            } catch (ClassNotFoundException e) {
                throw new IOException("cannot read frame: " + e, e);
            }
        }

        @Override
        public void close() {
            try {
                socket.close();
            } catch (IOException ignored) {
                // closing anyway
            }
        }
    }

    static SSLSocketFactory socketFactory(Map<String, ?> env) throws IOException {
        Object f = env == null ? null : env.get(TLS_FACTORY);
        if (f instanceof SSLSocketFactory) {
            return (SSLSocketFactory) f;
        }
        if (f != null) {
            throw new IOException(TLS_FACTORY + " must be a javax.net.ssl.SSLSocketFactory");
        }
        try {
            return SSLContext.getDefault().getSocketFactory();
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new IOException("no default SSLContext: " + e, e);
        }
    }

    static void protocols(SSLSocket s, Map<String, ?> env) {
        Object p = env == null ? null : env.get(TLS_PROTOCOLS);
        if (p instanceof String && !((String) p).isBlank()) {
            s.setEnabledProtocols(((String) p).trim().split("[\\s,]+"));
        }
    }

    static Class<?> type(String name) throws ClassNotFoundException {
        switch (name) {
            case "boolean": return boolean.class;
            case "int": return int.class;
            case "long": return long.class;
            default: return Class.forName(name, false, Wire.class.getClassLoader());
        }
    }
}
